"""Reading `nft -j -a list table` output (libnftables' JSON, schema version 1) for nat.py."""
import json


def objects(text: str) -> list[dict]:
    """The listing's objects, each {kind: fields} (table, set, map, chain, rule)."""
    return [o for o in json.loads(text).get("nftables", []) if "metainfo" not in o]


def _of_kind(objs: list[dict], kind: str):
    return (o[kind] for o in objs if kind in o)


def set_elements(objs: list[dict], name: str) -> list:
    for s in _of_kind(objs, "set"):
        if s["name"] == name:
            return list(s.get("elem", []))
    return []


def rules_with_comment(objs: list[dict], comment: str) -> list[tuple[str, int]]:
    """(chain, handle) of the rules carrying that comment."""
    return [(r["chain"], r["handle"]) for r in _of_kind(objs, "rule")
            if r.get("comment") == comment]


def published(objs: list[dict]) -> dict[str, list[tuple]]:
    """The published ports in the port maps, by the key in each element's comment:
    {key: sorted [(proto, host_ip, host_port, container_ip, container_port)]}."""
    out: dict[str, list[tuple]] = {}
    for m in _of_kind(objs, "map"):
        proto, _, kind = m["name"].partition("_")
        if proto not in ("tcp", "udp") or kind not in ("ip", "any"):
            continue
        for key_part, value in m.get("elem", []):
            elem = key_part.get("elem", {"val": key_part}) if isinstance(key_part, dict) \
                else {"val": key_part}
            val = elem["val"]
            host_ip, host_port = (val["concat"] if kind == "ip" else ("", val))
            container_ip, container_port = value["concat"]
            out.setdefault(elem.get("comment", ""), []).append(
                (proto, host_ip, int(host_port), container_ip, int(container_port)))
    return {k: sorted(v) for k, v in out.items()}
