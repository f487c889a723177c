/* nbbs_pyext.c: the C engine of nbbs.impl.NBBS(..., engine="c"), a CPython extension type.
 *
 * `_Engine` wraps one nbbs_t over words in a writable buffer the Python side provides (an
 * anonymous mmap for a private arena, a multiprocessing.shared_memory segment for a shared
 * one); it holds the buffer until close(). nbbs.impl.native.NativeNBBS derives from it and
 * from NBBS, so heap.alloc(...) and heap.free(...) are these C methods: no Python frame on
 * the way (README "The allocator" gives what that saves over ctypes and cffi).
 *
 * Arguments that are plain ints are checked here, by nbbs.c's checks (impl/arena.py's, in
 * its order, before any word is written). Anything else (a bool, a float, an int beyond 64
 * bits) and every refused call go to the Python side's _alloc_slow / _free_refused, which
 * rerun impl/arena.py's checks and raise its exception with its message: one source of truth
 * for the messages, and no cost on the path that succeeds.
 *
 * The GIL is released around each nbbs_alloc and nbbs_free: threads of one process then run
 * the algorithm in parallel, as processes sharing a segment do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "nbbs.h"

typedef struct {
    PyObject_HEAD
    nbbs_t a;
    Py_buffer view; /* the words' memory, held while open */
    int open;
} Engine;

static PyObject *closed_error(void) {
    PyErr_SetString(PyExc_ValueError, "the arena is closed (close() was called): attach it again to use it");
    return NULL;
}

/* _Engine(buffer, offset, depth, page_size, start, max_order, variant, fresh): words at
 * buffer[offset:], initialised to an empty arena if fresh, else taken as they are. */
static int Engine_init(Engine *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"buffer", "offset", "depth", "page_size", "start", "max_order", "variant", "fresh",
                             NULL};
    Py_buffer view;
    Py_ssize_t offset;
    unsigned int depth;
    unsigned long long page_size, start;
    int max_order, variant, fresh;
    if (self->open) {
        PyErr_SetString(PyExc_RuntimeError, "_Engine.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "w*nIKKiip", kwlist, &view, &offset, &depth, &page_size, &start,
                                     &max_order, &variant, &fresh))
        return -1;
    size_t need = nbbs_words_bytes(depth);
    if (need == 0 || offset < 0 || (size_t)view.len < need || (size_t)(view.len - need) < (size_t)offset) {
        PyErr_Format(PyExc_ValueError, "the buffer holds %zd bytes; words at offset %zd need %zu", view.len, offset,
                     need);
        PyBuffer_Release(&view);
        return -1;
    }
    char *words = (char *)view.buf + offset;
    if ((uintptr_t)words % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "the words must be 8-byte aligned");
        PyBuffer_Release(&view);
        return -1;
    }
    if (variant < 0 || variant >= NBBS_VARIANTS) {
        PyErr_Format(PyExc_ValueError, "no variant %d in the C port", variant);
        PyBuffer_Release(&view);
        return -1;
    }
    nbbs_variant v = (nbbs_variant)variant;
    nbbs_status st = fresh ? nbbs_init(&self->a, words, depth, page_size, start, max_order, v)
                           : nbbs_attach(&self->a, words, depth, page_size, start, max_order, v);
    if (st != NBBS_OK) {
        PyErr_Format(PyExc_ValueError, "nbbs_init refused the shape: %s", nbbs_status_name(st));
        PyBuffer_Release(&view);
        return -1;
    }
    self->view = view;
    self->open = 1;
    return 0;
}

static void Engine_dealloc(Engine *self) {
    if (self->open) PyBuffer_Release(&self->view);
    self->open = 0;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A plain int (not a bool, not a subclass) that fits int64: 1 and *out set; else 0, no error set. */
static int plain_i64(PyObject *o, int64_t *out) {
    if (!PyLong_CheckExact(o)) return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

/* A plain int that fits uint64: 1 and *out set; else 0, no error set. */
static int plain_u64(PyObject *o, uint64_t *out) {
    if (!PyLong_CheckExact(o)) return 0;
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

/* f(first, second=None) called with (args, nargs, kwnames): *first and *second (NULL if not
 * given), or 0 if the call is anything else (the Python side then sorts it out). */
static int two_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *first_name,
                    const char *second_name, PyObject **first, PyObject **second) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nkw < 1 || nargs + nkw > 2 || nargs > 2) return 0;
    *first = nargs > 0 ? args[0] : NULL;
    *second = nargs > 1 ? args[1] : NULL;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (*first == NULL && PyUnicode_CompareWithASCIIString(key, first_name) == 0)
            *first = args[nargs + i];
        else if (*second == NULL && PyUnicode_CompareWithASCIIString(key, second_name) == 0)
            *second = args[nargs + i];
        else
            return 0;
    }
    return *first != NULL;
}

/* Call the Python side's method `name` with the arguments as given. */
static PyObject *delegate(PyObject *self, const char *name, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    PyObject *m = PyObject_GetAttrString(self, name);
    if (m == NULL) return NULL;
    PyObject *r = PyObject_Vectorcall(m, args, (size_t)nargs, kwnames);
    Py_DECREF(m);
    return r;
}

static PyObject *run_alloc(Engine *self, int64_t order, int64_t hint) {
    uint64_t addr = 0;
    nbbs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = nbbs_alloc(&self->a, order, hint, &addr);
    Py_END_ALLOW_THREADS
    if (st == NBBS_OK) return PyLong_FromUnsignedLongLong(addr);
    if (st == NBBS_NO_BLOCK) Py_RETURN_NONE;
    return PyErr_Format(PyExc_RuntimeError, "nbbs_alloc: %s on checked arguments", nbbs_status_name(st));
}

/* alloc(order, hint=None) -> int | None. Plain ints in range: here; anything else: _alloc_slow. */
static PyObject *Engine_alloc(Engine *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    int64_t order, hint = NBBS_NO_HINT;
    PyObject *order_o, *hint_o;
    if (!two_args(args, nargs, kwnames, "order", "hint", &order_o, &hint_o) || !plain_i64(order_o, &order) ||
        order < 0 || order > (int64_t)self->a.max_order ||
        (hint_o != NULL && hint_o != Py_None && (!plain_i64(hint_o, &hint) || hint == NBBS_NO_HINT)))
        return delegate((PyObject *)self, "_alloc_slow", args, nargs, kwnames);
    if (!self->open) return closed_error();
    return run_alloc(self, order, hint);
}

/* _alloc_checked(order, hint): arguments the Python side has checked (hint None or in range). */
static PyObject *Engine_alloc_checked(Engine *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t order, hint = NBBS_NO_HINT;
    if (nargs != 2 || !plain_i64(args[0], &order) || (args[1] != Py_None && !plain_i64(args[1], &hint))) {
        PyErr_SetString(PyExc_TypeError, "_alloc_checked(order: int, hint: int | None)");
        return NULL;
    }
    if (!self->open) return closed_error();
    return run_alloc(self, order, hint);
}

/* free(address, order=None). Plain ints: here; anything else, and every refusal: the Python
 * side (_free_slow, _free_refused) raises impl/arena.py's exception. */
static PyObject *Engine_free(Engine *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    uint64_t addr;
    int64_t order = NBBS_ANY_ORDER;
    PyObject *addr_o, *order_o;
    if (!two_args(args, nargs, kwnames, "address", "order", &addr_o, &order_o) || !plain_u64(addr_o, &addr) ||
        (order_o != NULL && order_o != Py_None && (!plain_i64(order_o, &order) || order == NBBS_ANY_ORDER)))
        return delegate((PyObject *)self, "_free_slow", args, nargs, kwnames);
    if (!self->open) return closed_error();
    nbbs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = nbbs_free(&self->a, addr, order);
    Py_END_ALLOW_THREADS
    if (st == NBBS_OK) Py_RETURN_NONE;
    return PyObject_CallMethod((PyObject *)self, "_free_refused", "OOs", addr_o, order_o ? order_o : Py_None,
                               nbbs_status_name(st));
}

/* _free_checked(address, order): no Python-side fallback; the status name, or None if freed. */
static PyObject *Engine_free_checked(Engine *self, PyObject *const *args, Py_ssize_t nargs) {
    uint64_t addr;
    int64_t order = NBBS_ANY_ORDER;
    if (nargs != 2 || !plain_u64(args[0], &addr) || (args[1] != Py_None && !plain_i64(args[1], &order))) {
        PyErr_SetString(PyExc_TypeError, "_free_checked(address: int, order: int | None)");
        return NULL;
    }
    if (!self->open) return closed_error();
    nbbs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = nbbs_free(&self->a, addr, order);
    Py_END_ALLOW_THREADS
    if (st == NBBS_OK) Py_RETURN_NONE;
    return PyUnicode_FromString(nbbs_status_name(st));
}

/* words() -> tuple[int, ...]: every word, each read atomically (not all at one instant). */
static PyObject *Engine_words(Engine *self, PyObject *Py_UNUSED(ignored)) {
    if (!self->open) return closed_error();
    uint64_t count = nbbs_node_count(self->a.depth);
    PyObject *t = PyTuple_New((Py_ssize_t)count);
    if (t == NULL) return NULL;
    for (uint64_t i = 0; i < count; i++) {
        PyObject *w = PyLong_FromUnsignedLongLong(nbbs_peek(&self->a, i));
        if (w == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, w);
    }
    return t;
}

/* _word(node) -> int: one word, read atomically. */
static PyObject *Engine_word(Engine *self, PyObject *arg) {
    if (!self->open) return closed_error();
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if (n == 0 || n >= nbbs_node_count(self->a.depth)) return PyErr_Format(PyExc_IndexError, "no node %llu", n);
    return PyLong_FromUnsignedLongLong(nbbs_peek(&self->a, n));
}

/* _release_buffer(): let go of the words' memory (the Python side's close()). */
static PyObject *Engine_release(Engine *self, PyObject *Py_UNUSED(ignored)) {
    if (self->open) {
        self->open = 0;
        self->a.words = NULL;
        PyBuffer_Release(&self->view);
    }
    Py_RETURN_NONE;
}

static PyObject *Engine_is_open(Engine *self, void *Py_UNUSED(closure)) { return PyBool_FromLong(self->open); }

/* _pairs(order, hint, pairs): alloc + free pairs with no Python in between, for the
 * benchmark's native baseline in the same process (returns the number of failed allocs). */
static PyObject *Engine_pairs(Engine *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t order, hint = NBBS_NO_HINT, pairs;
    if (nargs != 3 || !plain_i64(args[0], &order) || (args[1] != Py_None && !plain_i64(args[1], &hint)) || !plain_i64(args[2], &pairs)) {
        PyErr_SetString(PyExc_TypeError, "_pairs(order: int, hint: int | None, pairs: int)");
        return NULL;
    }
    if (!self->open) return closed_error();
    int64_t failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = 0; i < pairs; i++) {
        uint64_t addr;
        if (nbbs_alloc(&self->a, order, hint, &addr) != NBBS_OK)
            failed++;
        else
            nbbs_free(&self->a, addr, NBBS_ANY_ORDER);
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(failed);
}

static PyMethodDef Engine_methods[] = {
    {"alloc", (PyCFunction)(void (*)(void))Engine_alloc, METH_FASTCALL | METH_KEYWORDS,
     "alloc(order, hint=None) -> int | None: the address of a new block of 2**order pages, or None."},
    {"free", (PyCFunction)(void (*)(void))Engine_free, METH_FASTCALL | METH_KEYWORDS,
     "free(address, order=None): give back the live block at address."},
    {"_alloc_checked", (PyCFunction)(void (*)(void))Engine_alloc_checked, METH_FASTCALL,
     "alloc with arguments already checked."},
    {"_free_checked", (PyCFunction)(void (*)(void))Engine_free_checked, METH_FASTCALL,
     "free with int arguments: None, or the refusing status's error class name."},
    {"_pairs", (PyCFunction)(void (*)(void))Engine_pairs, METH_FASTCALL,
     "_pairs(order, hint, pairs): alloc + free pairs in C, for benchmarks; the failed allocs."},
    {"words", (PyCFunction)Engine_words, METH_NOARGS, "words() -> tuple[int, ...]: a copy of the status words."},
    {"_word", (PyCFunction)Engine_word, METH_O, "_word(node) -> int: one status word."},
    {"_release_buffer", (PyCFunction)Engine_release, METH_NOARGS, "let go of the words' memory."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"_open", (getter)Engine_is_open, NULL, "whether the words' memory is held", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_nbbs_engine._Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_itemsize = 0,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "An NBBS arena over words in a writable buffer (nbbs.impl.native.NativeNBBS's base).",
    .tp_methods = Engine_methods,
    .tp_getset = Engine_getset,
    .tp_init = (initproc)Engine_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef module_methods[] = {
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT, "_nbbs_engine", "The C engine of nbbs.impl.NBBS(..., engine=\"c\").", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nbbs_engine(void) {
    if (PyType_Ready(&EngineType) < 0) return NULL;
    PyObject *m = PyModule_Create(&engine_module);
    if (m == NULL) return NULL;
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "_Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "NODE_BYTES", (long)sizeof(nbbs_word)) < 0) return NULL;
    return m;
}
