"""The metadata store on its own (SQLite, no daemon)."""
from supervisor.containers.store import Store


def test_a_new_container_has_no_shim_address(tmp_path):
    """An absent text column is "", not 0: SQLite would keep a 0 as the string "0", which reads as
    a shim address, so every start would first try to clean up a shim that never existed."""
    store = Store(str(tmp_path / "meta.db"))
    rec = store.add({"id": "c1", "name": "n1", "config": {}, "rootfs": "/r", "runtime": "hawser",
                     "labels": {}, "bundle": "/b", "status": "created"})
    assert rec["shim_address"] == "" and not rec["shim_address"]
    assert rec["shim_pid"] == 0 and rec["pid"] == 0
