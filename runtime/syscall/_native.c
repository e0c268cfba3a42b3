/* runtime.syscall._native: the raw system calls of runtime.syscall.native, without ctypes.
 *
 * Importing ctypes (and libffi, struct, the structure types) costs every `hawser` call ~2 ms; this
 * module is one small .so built by `make install` (runtime.syscall.linux, through ctypes, remains
 * the fallback when it is missing). Each function returns the call's result, or -errno: the
 * messages are made in Python (runtime.syscall.base), the same for both implementations.
 * Paths and names are bytes or None (NULL).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#define KEYCTL_JOIN_SESSION_KEYRING 1
#define CAP_VERSION_3 0x20080522

/* O& converter: bytes -> its buffer, None -> NULL. */
static int opt_bytes(PyObject *o, void *out)
{
    if (o == Py_None) {
        *(const char **)out = NULL;
        return 1;
    }
    if (!PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected bytes or None, not %.100s", Py_TYPE(o)->tp_name);
        return 0;
    }
    *(const char **)out = PyBytes_AS_STRING(o);
    return 1;
}

/* The result of a call made with the GIL released: the value, or -errno. */
#define CALL(expr)                                   \
    long ret_;                                       \
    int err_ = 0;                                    \
    Py_BEGIN_ALLOW_THREADS                           \
    ret_ = (long)(expr);                             \
    if (ret_ < 0)                                    \
        err_ = errno;                                \
    Py_END_ALLOW_THREADS                             \
    return PyLong_FromLong(ret_ < 0 ? -err_ : ret_)

static PyObject *n_unshare(PyObject *self, PyObject *args)
{
    int flags;
    if (!PyArg_ParseTuple(args, "i", &flags))
        return NULL;
    CALL(unshare(flags));
}

static PyObject *n_setns(PyObject *self, PyObject *args)
{
    int fd, nstype;
    if (!PyArg_ParseTuple(args, "ii", &fd, &nstype))
        return NULL;
    CALL(setns(fd, nstype));
}

static PyObject *n_mount(PyObject *self, PyObject *args)
{
    const char *source, *target, *fstype, *data;
    unsigned long flags;
    if (!PyArg_ParseTuple(args, "O&O&O&kO&", opt_bytes, &source, opt_bytes, &target, opt_bytes,
                          &fstype, &flags, opt_bytes, &data))
        return NULL;
    CALL(mount(source, target, fstype, flags, data));
}

static PyObject *n_umount2(PyObject *self, PyObject *args)
{
    const char *target;
    int flags;
    if (!PyArg_ParseTuple(args, "O&i", opt_bytes, &target, &flags))
        return NULL;
    CALL(umount2(target, flags));
}

static PyObject *n_pivot_root(PyObject *self, PyObject *args)
{
    const char *new_root, *put_old;
    if (!PyArg_ParseTuple(args, "O&O&", opt_bytes, &new_root, opt_bytes, &put_old))
        return NULL;
    CALL(syscall(SYS_pivot_root, new_root, put_old));
}

struct hawser_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static PyObject *n_mount_setattr(PyObject *self, PyObject *args)
{
    int dirfd;
    const char *path;
    unsigned int flags;
    unsigned long long set, clr, propagation;
    if (!PyArg_ParseTuple(args, "iO&IKKK", &dirfd, opt_bytes, &path, &flags, &set, &clr,
                          &propagation))
        return NULL;
    struct hawser_mount_attr attr = {set, clr, propagation, 0};
    CALL(syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr)));
}

struct hawser_open_how {
    uint64_t flags, mode, resolve;
};

static PyObject *n_openat2(PyObject *self, PyObject *args)
{
    int dirfd;
    const char *path;
    unsigned long long flags, mode, resolve;
    if (!PyArg_ParseTuple(args, "iO&KKK", &dirfd, opt_bytes, &path, &flags, &mode, &resolve))
        return NULL;
    struct hawser_open_how how = {flags, mode, resolve};
    CALL(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

static PyObject *n_close_range(PyObject *self, PyObject *args)
{
    unsigned int first, last, flags;
    if (!PyArg_ParseTuple(args, "III", &first, &last, &flags))
        return NULL;
    CALL(syscall(SYS_close_range, first, last, flags));
}

/* sethostname / setdomainname: (name bytes) */
static PyObject *set_name(PyObject *args, int (*fn)(const char *, size_t))
{
    const char *name;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "y#", &name, &len))
        return NULL;
    CALL(fn(name, (size_t)len));
}

static PyObject *n_sethostname(PyObject *self, PyObject *args)
{
    return set_name(args, sethostname);
}

static PyObject *n_setdomainname(PyObject *self, PyObject *args)
{
    return set_name(args, setdomainname);
}

static PyObject *n_personality(PyObject *self, PyObject *args)
{
    unsigned long persona;
    if (!PyArg_ParseTuple(args, "k", &persona))
        return NULL;
    CALL(syscall(SYS_personality, persona));
}

static PyObject *n_join_session_keyring(PyObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "O&", opt_bytes, &name))
        return NULL;
    CALL(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name));
}

static PyObject *n_prctl(PyObject *self, PyObject *args)
{
    int option;
    unsigned long a2, a3, a4, a5;
    if (!PyArg_ParseTuple(args, "ikkkk", &option, &a2, &a3, &a4, &a5))
        return NULL;
    CALL(prctl(option, a2, a3, a4, a5));
}

struct hawser_cap_header {
    uint32_t version;
    int pid;
};

struct hawser_cap_data {
    uint32_t effective, permitted, inheritable;
};

/* capset(effective, permitted, inheritable): 64-bit masks, as two 32-bit words (version 3). */
static PyObject *n_capset(PyObject *self, PyObject *args)
{
    unsigned long long e, p, i;
    if (!PyArg_ParseTuple(args, "KKK", &e, &p, &i))
        return NULL;
    struct hawser_cap_header hdr = {CAP_VERSION_3, 0};
    struct hawser_cap_data data[2] = {
        {(uint32_t)e, (uint32_t)p, (uint32_t)i},
        {(uint32_t)(e >> 32), (uint32_t)(p >> 32), (uint32_t)(i >> 32)},
    };
    CALL(syscall(SYS_capset, &hdr, data));
}

/* capget() of this process: (effective, permitted, inheritable) as 64-bit masks, or -errno. */
static PyObject *n_capget(PyObject *self, PyObject *noargs)
{
    struct hawser_cap_header hdr = {CAP_VERSION_3, 0};
    struct hawser_cap_data data[2] = {{0, 0, 0}, {0, 0, 0}};
    if (syscall(SYS_capget, &hdr, data) < 0)
        return PyLong_FromLong(-errno);
    return Py_BuildValue("(KKK)",
                         (unsigned long long)data[0].effective | (unsigned long long)data[1].effective << 32,
                         (unsigned long long)data[0].permitted | (unsigned long long)data[1].permitted << 32,
                         (unsigned long long)data[0].inheritable |
                             (unsigned long long)data[1].inheritable << 32);
}

static PyMethodDef methods[] = {
    {"unshare", n_unshare, METH_VARARGS, "unshare(flags)"},
    {"setns", n_setns, METH_VARARGS, "setns(fd, nstype)"},
    {"mount", n_mount, METH_VARARGS, "mount(source, target, fstype, flags, data)"},
    {"umount2", n_umount2, METH_VARARGS, "umount2(target, flags)"},
    {"pivot_root", n_pivot_root, METH_VARARGS, "pivot_root(new_root, put_old)"},
    {"mount_setattr", n_mount_setattr, METH_VARARGS,
     "mount_setattr(dirfd, path, flags, attr_set, attr_clr, propagation)"},
    {"openat2", n_openat2, METH_VARARGS, "openat2(dirfd, path, flags, mode, resolve) -> fd"},
    {"close_range", n_close_range, METH_VARARGS, "close_range(first, last, flags)"},
    {"sethostname", n_sethostname, METH_VARARGS, "sethostname(name)"},
    {"setdomainname", n_setdomainname, METH_VARARGS, "setdomainname(name)"},
    {"personality", n_personality, METH_VARARGS, "personality(persona)"},
    {"join_session_keyring", n_join_session_keyring, METH_VARARGS,
     "keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)"},
    {"prctl", n_prctl, METH_VARARGS, "prctl(option, arg2, arg3, arg4, arg5)"},
    {"capset", n_capset, METH_VARARGS, "capset(effective, permitted, inheritable)"},
    {"capget", n_capget, METH_NOARGS, "capget() -> (effective, permitted, inheritable)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "runtime.syscall._native",
    "Raw Linux system calls for runtime.syscall.native (each returns the result or -errno).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModule_Create(&module);
}
