/* ctxsnap._speedups: the run path of a snapshot, compiled (issue 14).
 *
 * The pure-Python twin of everything here is ctxsnap/_run_path.py, and the two must behave the same in every
 * row of the semantics table: the test matrix runs the whole suite against each (docs/benchmarks.md). What this
 * module saves is what pure Python cannot: the frames, the packing of arguments and the attribute lookups of
 * Snapshot.run, of capture() (whose twin is ctxsnap._capture.capture), of a contextvars-only capture, of the
 * provider loop of a capture, of an executor's run_task, and of the steps the Flask providers take on every
 * capture and run (the helper types; their twins are those providers' own methods). Everything that is not
 * the hot path (every error, the undo path of a teardown-mode snapshot) calls back into the Python functions that
 * ctxsnap._snapshot hands over with configure(), so each message and rule is written once, in Python.
 *
 * Only the public C API is used (for contextvars: PyContext_Copy, PyContext_CopyCurrent, PyContext_New,
 * PyContext_Enter, PyContext_Exit, PyContextVar_Get, PyContextVar_Set), on CPython 3.11 to 3.13.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* What configure() hands over: the Python side's error paths and constants. */
static PyObject *raise_sealed;        /* raise_sealed(method) -> raises SnapshotClosedError */
static PyObject *check_callable;      /* check_callable(method, fn) -> raises for a non-callable or async one */
static PyObject *raise_async;         /* raise_async(method, fn) -> raises */
static PyObject *refuse_async_run;    /* refuse_async_run(fn, result) -> raises */
static PyObject *refuse_async_result; /* refuse_async_result(fn, result) -> raises */
static PyObject *apply_failed;        /* apply_failed(provider, exc) -> the ProviderError to raise instead */
static PyObject *capture_failed;      /* capture_failed(provider, exc) -> the same, for a failed capture */
static PyObject *snapshot_class;      /* Snapshot */
static PyObject *forget_captured;     /* forget_captured(exc) -> clears the locals of run-path frames */
static PyObject *apply_run_undo;      /* apply_run_undo(snapshot, fn, args, kwargs): a run whose providers undo */
static PyObject *async_results;       /* frozenset({CoroutineType, AsyncGeneratorType}) */
static PyObject *bare_class;          /* ContextVarsSnapshot */
static PyObject *no_undo;             /* NO_UNDO, the empty frozenset */
static int async_flags;               /* CO_COROUTINE | CO_ASYNC_GENERATOR */

static PyObject *str_run;

typedef struct {
    PyObject_HEAD
    PyObject *base;    /* the captured Context, or NULL/None when the snapshot carries no ContextVars */
    PyObject *entries; /* tuple of (provider, state) */
    PyObject *undo;    /* frozenset of id(provider) whose undo runs after each run */
    char sealed;
    PyObject *weakreflist;
} SnapshotCore;

static PyTypeObject SnapshotCoreType;

static int
configured(void)
{
    if (bare_class == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ctxsnap._speedups is not configured. Import ctxsnap, which configures it.");
        return 0;
    }
    return 1;
}

/* -- errors: every one is raised by the Python side ------------------------------------------------------ */

/* 0 when the raiser raised, 1 when it returned (a check that passed). */
static int
call_raiser(PyObject *raiser, PyObject *first, PyObject *second)
{
    PyObject *result = PyObject_CallFunctionObjArgs(raiser, first, second, NULL);
    if (result == NULL) {
        return 0;
    }
    Py_DECREF(result);
    return 1;
}

/* A raiser that returned breaks its contract: still an error, never a result. */
static PyObject *
raised(PyObject *raiser, PyObject *first, PyObject *second)
{
    if (call_raiser(raiser, first, second)) {
        PyErr_Format(PyExc_SystemError, "%R did not raise", raiser);
    }
    return NULL;
}

/* The exception being raised goes through forget_captured(exc) before it leaves (see Snapshot._run). */
static void
forget_raised(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL) {
        if (traceback != NULL) {
            PyException_SetTraceback(value, traceback);
        }
        PyObject *done = PyObject_CallOneArg(forget_captured, value);
        if (done == NULL) {
            /* Forgetting is best effort: the task's own error is what the caller must see. */
            PyErr_Clear();
        }
        else {
            Py_DECREF(done);
        }
    }
    PyErr_Restore(type, value, traceback);
}

/* A provider's step that raised an Exception: raise failed(provider, exc) from it instead. */
static void
raise_provider_failure(PyObject *failed, PyObject *provider)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return; /* KeyboardInterrupt, SystemExit: as they are */
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    PyObject *error = PyObject_CallFunctionObjArgs(failed, provider, value, NULL);
    if (error == NULL) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return;
    }
    /* What "raise error from exc" sets. */
    Py_INCREF(value);
    PyException_SetContext(error, value);
    PyException_SetCause(error, value); /* steals the reference */
    PyErr_SetObject((PyObject *)Py_TYPE(error), error);
    Py_DECREF(error);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
}

/* A snapshot's entries: provider, state, apply for each provider, in one flat tuple (see ctxsnap._run_path). */
#define ENTRY_SIZE 3

/* -- the run ------------------------------------------------------------------------------------------- */

/* A fresh Context for one run: a copy of the captured one, or an empty one. New reference. */
static PyObject *
fresh_context(PyObject *base)
{
    if (base == NULL || base == Py_None) {
        return PyContext_New();
    }
    return PyContext_Copy(base);
}

/* The task's call: fn(*args, **kwargs) from a vectorcall's arguments, or from a tuple and a dict. */
typedef struct {
    PyObject *const *args;
    size_t nargsf;
    PyObject *kwnames;
    PyObject *tuple;
    PyObject *dict;
} Call;

static PyObject *
make_call(PyObject *fn, const Call *call)
{
    if (call->tuple != NULL) {
        if (call->dict != NULL && PyDict_GET_SIZE(call->dict) != 0) {
            return PyObject_Call(fn, call->tuple, call->dict);
        }
        if (PyTuple_GET_SIZE(call->tuple) == 0) {
            return PyObject_CallNoArgs(fn);
        }
        return PyObject_Call(fn, call->tuple, NULL);
    }
    return PyObject_Vectorcall(fn, call->args, call->nargsf, call->kwnames);
}

/* The undo path: apply_run_undo(snapshot, fn, args, kwargs), in Python, inside the run's context. */
static PyObject *
run_with_undo(PyObject *self, PyObject *fn, const Call *call)
{
    PyObject *args, *kwargs, *result;
    if (call->tuple != NULL) {
        args = call->tuple;
        Py_INCREF(args);
        kwargs = call->dict != NULL ? call->dict : PyDict_New();
        if (call->dict != NULL) {
            Py_INCREF(kwargs);
        }
    }
    else {
        Py_ssize_t nargs = PyVectorcall_NARGS(call->nargsf);
        args = PyTuple_New(nargs);
        kwargs = PyDict_New();
        if (args == NULL || kwargs == NULL) {
            Py_XDECREF(args);
            Py_XDECREF(kwargs);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(call->args[i]);
            PyTuple_SET_ITEM(args, i, call->args[i]);
        }
        if (call->kwnames != NULL) {
            Py_ssize_t nkw = PyTuple_GET_SIZE(call->kwnames);
            for (Py_ssize_t i = 0; i < nkw; i++) {
                if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(call->kwnames, i), call->args[nargs + i]) < 0) {
                    Py_DECREF(args);
                    Py_DECREF(kwargs);
                    return NULL;
                }
            }
        }
    }
    if (kwargs == NULL) {
        Py_DECREF(args);
        return NULL;
    }
    result = PyObject_CallFunctionObjArgs(apply_run_undo, self, fn, args, kwargs, NULL);
    Py_DECREF(args);
    Py_DECREF(kwargs);
    return result;
}

/* Snapshot._run's body: enter a fresh context, let each provider apply, call the task, leave. */
static PyObject *
run_in_snapshot(PyObject *self, PyObject *base, PyObject *entries, PyObject *undo, PyObject *fn, const Call *call,
                PyObject *refuse)
{
    PyObject *context = fresh_context(base);
    if (context == NULL) {
        return NULL;
    }
    if (PyContext_Enter(context) < 0) {
        Py_DECREF(context);
        return NULL;
    }
    PyObject *result = NULL;
    if (undo != NULL && PyAnySet_Check(undo) && PySet_GET_SIZE(undo) != 0) {
        result = run_with_undo(self, fn, call);
    }
    else {
        Py_ssize_t count = (entries != NULL && PyTuple_Check(entries)) ? PyTuple_GET_SIZE(entries) : 0;
        int applied = 1;
        if (count % ENTRY_SIZE) {
            PyErr_SetString(PyExc_TypeError, "a snapshot's entries are not provider, state, apply for each.");
            applied = 0;
        }
        else if (count) {
            Py_INCREF(entries); /* a provider's apply could rebind the snapshot's _entries */
            for (Py_ssize_t i = 0; i < count; i += ENTRY_SIZE) {
                /* provider, state, apply: the apply its plan looked up. */
                PyObject *provider = PyTuple_GET_ITEM(entries, i), *state = PyTuple_GET_ITEM(entries, i + 1);
                PyObject *done = PyObject_CallOneArg(PyTuple_GET_ITEM(entries, i + 2), state);
                if (done == NULL) {
                    raise_provider_failure(apply_failed, provider);
                    applied = 0;
                    break;
                }
                Py_DECREF(done);
            }
            Py_DECREF(entries);
        }
        if (applied) {
            result = make_call(fn, call);
        }
    }
    if (result == NULL) {
        forget_raised();
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (PyContext_Exit(context) < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, traceback);
        Py_DECREF(context);
        return NULL;
    }
    int left = PyContext_Exit(context);
    Py_DECREF(context);
    if (left < 0) {
        Py_DECREF(result);
        return NULL;
    }
    if (PySet_Contains(async_results, (PyObject *)Py_TYPE(result)) == 1) {
        raised(refuse, fn, result);
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static int
is_plain_function(PyObject *fn)
{
    return Py_IS_TYPE(fn, &PyFunction_Type);
}

/* Snapshot.run(fn, /, *args, **kwargs) */
static PyObject *
SnapshotCore_run(SnapshotCore *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "Snapshot.run() missing the function to run. Pass it first: snap.run(fn, *args).");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    if (self->sealed) {
        return raised(raise_sealed, str_run, NULL);
    }
    PyObject *fn = args[0];
    int has_entries = self->entries != NULL && PyTuple_Check(self->entries) && PyTuple_GET_SIZE(self->entries);
    if (!is_plain_function(fn)) {
        if (!call_raiser(check_callable, str_run, fn)) {
            return NULL;
        }
    }
    else if (has_entries && (((PyCodeObject *)PyFunction_GET_CODE(fn))->co_flags & async_flags)) {
        /* Before any provider applies anything. With ContextVars only, the result's check says the same. */
        return raised(raise_async, str_run, fn);
    }
    Call call = {args + 1, (size_t)(nargs - 1), kwnames, NULL, NULL};
    return run_in_snapshot((PyObject *)self, self->base, self->entries, self->undo, fn, &call,
                           has_entries ? refuse_async_result : refuse_async_run);
}

/* Snapshot._run(fn, args, kwargs): the run without the public checks, for adapters that checked fn. */
static PyObject *
SnapshotCore__run(SnapshotCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyTuple_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "Snapshot._run() takes (fn, args: tuple, kwargs: dict).");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    Call call = {NULL, 0, NULL, args[1], args[2]};
    return run_in_snapshot((PyObject *)self, self->base, self->entries, self->undo, args[0], &call,
                           refuse_async_result);
}

static PyMethodDef SnapshotCore_methods[] = {
    {"run", (PyCFunction)(void (*)(void))SnapshotCore_run, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("run($self, fn, /, *args, **kwargs)\n--\n\n"
               "Call ``fn(*args, **kwargs)`` now, in the current thread, inside a fresh copy of this snapshot.")},
    {"_run", (PyCFunction)(void (*)(void))SnapshotCore__run, METH_FASTCALL,
     PyDoc_STR("_run($self, fn, args, kwargs, /)\n--\n\nrun(fn, *args, **kwargs) without the public checks.")},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef SnapshotCore_members[] = {
    {"_base", T_OBJECT, offsetof(SnapshotCore, base), 0, NULL},
    {"_entries", T_OBJECT, offsetof(SnapshotCore, entries), 0, NULL},
    {"_undo", T_OBJECT, offsetof(SnapshotCore, undo), 0, NULL},
    {"_sealed", T_BOOL, offsetof(SnapshotCore, sealed), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static int
SnapshotCore_traverse(SnapshotCore *self, visitproc visit, void *arg)
{
    /* No visit of the type: the static type needs none, and subtype_traverse visits a heap subclass. */
    Py_VISIT(self->base);
    Py_VISIT(self->entries);
    Py_VISIT(self->undo);
    return 0;
}

static int
SnapshotCore_clear(SnapshotCore *self)
{
    Py_CLEAR(self->base);
    Py_CLEAR(self->entries);
    Py_CLEAR(self->undo);
    return 0;
}

static void
SnapshotCore_dealloc(SnapshotCore *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    SnapshotCore_clear(self);
    /* A heap subclass's reference to its type is dropped by subtype_dealloc, which calls this. */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject SnapshotCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ctxsnap._speedups.SnapshotCore",
    .tp_basicsize = sizeof(SnapshotCore),
    .tp_dealloc = (destructor)SnapshotCore_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR("The fields and the run path of a Snapshot; ctxsnap.Snapshot is its subclass."),
    .tp_traverse = (traverseproc)SnapshotCore_traverse,
    .tp_clear = (inquiry)SnapshotCore_clear,
    .tp_weaklistoffset = offsetof(SnapshotCore, weakreflist),
    .tp_methods = SnapshotCore_methods,
    .tp_members = SnapshotCore_members,
    .tp_new = PyType_GenericNew,
};

/* -- forks of a framework's context objects --------------------------------------------------------------
 *
 * The Flask providers of the ContextVar layout (ctxsnap/providers/_flask_contextvars.py) capture and apply
 * through these on every snapshot: what they do there in Python, step by step, done here without the frames.
 * They know no framework: the ContextVar, the attribute names and the fallbacks come from the provider.
 */

static PyObject *str_dict; /* "__dict__" */
static PyObject *empty_tuple;
static PyObject *zero; /* the COPY mode of a state */

/* The nearest base of cls written in C, when object.__new__(cls) may make an instance of cls; else NULL with
 * the TypeError it raises: that base has a __new__ of its own (a __new__ written in Python does not matter). */
static PyTypeObject *
static_base(PyTypeObject *cls)
{
    PyTypeObject *base = cls;
    while (base->tp_base != NULL && (base->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        base = base->tp_base;
    }
    if (base->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_Format(PyExc_TypeError, "object.__new__(%s) is not safe, use %s.__new__()", cls->tp_name,
                     base->tp_name);
        return NULL;
    }
    return base;
}

/* object.__new__(cls). */
static PyObject *
new_instance(PyTypeObject *cls)
{
    if (static_base(cls) == NULL) {
        return NULL;
    }
    return PyBaseObject_Type.tp_new(cls, empty_tuple, NULL);
}

/* object.__new__(cls), then object.__setattr__(instance, "__dict__", namespace). On 3.11 and 3.12, an
 * instance of a plain Python class, which keeps its attributes in the object itself, is allocated as
 * object.__new__ does but without setting up those inline attributes: the assignment of a __dict__ would turn
 * them into a dict of their own and throw it away (about 500 instructions per instance, issue 14). */
static PyObject *
new_instance_with(PyTypeObject *cls, PyObject *namespace)
{
    PyTypeObject *base = static_base(cls);
    if (base == NULL) {
        return NULL;
    }
    PyObject *instance;
#if PY_VERSION_HEX < 0x030D0000
    /* 3.13 sets up the inline attributes in tp_alloc itself, and its __dict__ assignment keeps no copy of them;
     * its PyObject_GenericSetDict does not reach those attributes either (the assignment below does). */
    if (base == &PyBaseObject_Type && (cls->tp_flags & Py_TPFLAGS_MANAGED_DICT) &&
        !(cls->tp_flags & Py_TPFLAGS_IS_ABSTRACT)) {
        instance = cls->tp_alloc(cls, 0);
        if (instance != NULL && PyObject_GenericSetDict(instance, namespace, NULL) < 0) {
            Py_CLEAR(instance);
        }
        return instance;
    }
    instance = PyBaseObject_Type.tp_new(cls, empty_tuple, NULL);
#else
    /* object.__new__'s own checks hold for such a class: what remains of it is the allocation. */
    instance = base == &PyBaseObject_Type && !(cls->tp_flags & Py_TPFLAGS_IS_ABSTRACT)
                   ? cls->tp_alloc(cls, 0)
                   : PyBaseObject_Type.tp_new(cls, empty_tuple, NULL);
#endif
    if (instance != NULL && PyObject_GenericSetAttr(instance, str_dict, namespace) < 0) {
        Py_CLEAR(instance);
    }
    return instance;
}

/* PyTuple_Pack(count, ...) from an array, without the variadic arguments. */
static PyObject *
new_tuple(Py_ssize_t count, PyObject *const *items)
{
    PyObject *tuple = PyTuple_New(count);
    if (tuple != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyTuple_SET_ITEM(tuple, i, Py_NewRef(items[i]));
        }
    }
    return tuple;
}

/* obj.__dict__, a new reference; read without a lookup on its class when it is plain (a class whose
 * __dict__ and attribute reads are object's, which the provider checks). */
static PyObject *
namespace_of(PyObject *obj, PyObject *plain)
{
    return (PyObject *)Py_TYPE(obj) == plain ? PyObject_GenericGetDict(obj, NULL) : PyObject_GetAttr(obj, str_dict);
}

/* A new dict: a copy of obj.__dict__. */
static PyObject *
namespace_copy(PyObject *obj, PyObject *plain, PyObject **namespace)
{
    *namespace = namespace_of(obj, plain);
    if (*namespace == NULL) {
        return NULL;
    }
    if (!PyDict_Check(*namespace)) {
        PyErr_SetString(PyExc_TypeError, "a context object's __dict__ is not a dict.");
        Py_CLEAR(*namespace);
        return NULL;
    }
    return PyDict_Copy(*namespace);
}

/* Each name of names that namespace holds gets a new empty list (per-push bookkeeping of its own). */
static int
fresh_lists(PyObject *namespace, PyObject *names)
{
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        int has = PyDict_Contains(namespace, name);
        if (has < 0) {
            return -1;
        }
        if (has) {
            PyObject *list = PyList_New(0);
            if (list == NULL || PyDict_SetItem(namespace, name, list) < 0) {
                Py_XDECREF(list);
                return -1;
            }
            Py_DECREF(list);
        }
    }
    return 0;
}

/* Each helper type is its call and object fields only, all set at construction: one constructor, traverse,
 * clear and dealloc serve the three, reading the fields as an array (their count follows from the type's size)
 * and checking each argument against a kind: 'v' a ContextVar, 'd' a dict, 't' a tuple, 'o' anything. */
#define HELPER_HEAD PyObject_HEAD vectorcallfunc vectorcall;

typedef struct {
    HELPER_HEAD
    PyObject *fields[1];
} Helper;

static Py_ssize_t
helper_field_count(PyTypeObject *type)
{
    return (Py_ssize_t)((type->tp_basicsize - offsetof(Helper, fields)) / sizeof(PyObject *));
}

static PyObject *
helper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs, vectorcallfunc call, const char *kinds)
{
    Py_ssize_t count = helper_field_count(type);
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) || PyTuple_GET_SIZE(args) != count) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments.", type->tp_name, count);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyTuple_GET_ITEM(args, i);
        char kind = kinds[i];
        if ((kind == 'v' && !PyContextVar_CheckExact(value)) || (kind == 'd' && !PyDict_Check(value)) ||
            (kind == 't' && !PyTuple_Check(value))) {
            PyErr_Format(PyExc_TypeError, "%s() argument %zd must be a %s, not %.100s.", type->tp_name, i + 1,
                         kind == 'v' ? "ContextVar" : kind == 'd' ? "dict" : "tuple", Py_TYPE(value)->tp_name);
            return NULL;
        }
    }
    Helper *self = PyObject_GC_New(Helper, type);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = call;
    for (Py_ssize_t i = 0; i < count; i++) {
        self->fields[i] = Py_NewRef(PyTuple_GET_ITEM(args, i));
    }
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
helper_traverse(Helper *self, visitproc visit, void *arg)
{
    Py_ssize_t count = helper_field_count(Py_TYPE(self));
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_VISIT(self->fields[i]);
    }
    return 0;
}

static int
helper_clear(Helper *self)
{
    Py_ssize_t count = helper_field_count(Py_TYPE(self));
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_CLEAR(self->fields[i]);
    }
    return 0;
}

static void
helper_dealloc(Helper *self)
{
    PyObject_GC_UnTrack(self);
    helper_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* What a capture() of var starts from: var.get(None), a new reference; NULL with an error when called with
 * arguments. */
static PyObject *
captured_object(PyObject *var, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 0 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "capture() takes no arguments.");
        return NULL;
    }
    PyObject *context;
    if (PyContextVar_Get(var, Py_None, &context) < 0) {
        return NULL;
    }
    return context;
}

/* ViewCapture(var, shared, fresh, plain): var.get(None), and when set, a view of it: an object of its class
 * whose namespace is a copy of its own, with the names in shared (a dict) that it has bound to shared's values
 * and the names in fresh (a tuple) that it has bound to new empty lists. plain: see namespace_of. */
typedef struct {
    HELPER_HEAD
    PyObject *var;
    PyObject *shared;
    PyObject *fresh;
    PyObject *plain;
} ViewCapture;

static PyObject *
ViewCapture_call(ViewCapture *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *context = captured_object(self->var, nargsf, kwnames);
    if (context == NULL || context == Py_None) {
        return context;
    }
    PyObject *namespace, *copy = namespace_copy(context, self->plain, &namespace);
    PyObject *view = NULL;
    if (copy == NULL) {
        goto done;
    }
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(self->shared, &position, &key, &value)) {
        int has = PyDict_Contains(copy, key);
        if (has < 0 || (has && PyDict_SetItem(copy, key, value) < 0)) {
            goto done;
        }
    }
    if (fresh_lists(copy, self->fresh) < 0) {
        goto done;
    }
    view = new_instance_with(Py_TYPE(context), copy);
done:
    Py_XDECREF(copy);
    Py_XDECREF(namespace);
    Py_DECREF(context);
    return view;
}

/* GCapture(var, policy, extension_key, fallback, storable, plain_g): the app provider's capture. With no
 * policy in force (no override active in the namespace policy, the app without the extension), (0, context, a
 * copy of context.g's namespace, False); otherwise fallback(context), the Python rules. None when var is not
 * set. The attributes of a context of the storable class (see ForkApply) are read from its namespace; plain_g:
 * see namespace_of. */
typedef struct {
    HELPER_HEAD
    PyObject *var;
    PyObject *policy; /* the Policy's namespace: its attributes, read without a lookup on its class */
    PyObject *extension_key;
    PyObject *fallback;
    PyObject *storable;
    PyObject *plain_g;
} GCapture;

/* context.name, a new reference: from namespace (borrowed) when it is not NULL and holds the name. */
static PyObject *
context_attribute(PyObject *context, PyObject *namespace, PyObject *name)
{
    PyObject *value = namespace == NULL ? NULL : PyDict_GetItemWithError(namespace, name);
    if (value != NULL) {
        return Py_NewRef(value);
    }
    return PyErr_Occurred() ? NULL : PyObject_GetAttr(context, name);
}

static PyObject *str_overrides_active, *str_app, *str_extensions, *str_g;

static PyObject *
GCapture_call(GCapture *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *context = captured_object(self->var, nargsf, kwnames);
    if (context == NULL || context == Py_None) {
        return context;
    }
    PyObject *result = NULL, *app = NULL, *extensions = NULL, *g = NULL, *values = NULL, *namespace = NULL;
    if ((PyObject *)Py_TYPE(context) == self->storable) {
        namespace = PyObject_GenericGetDict(context, NULL);
        if (namespace == NULL) {
            goto done;
        }
    }
    PyObject *overrides = PyDict_GetItemWithError(self->policy, str_overrides_active);
    if (overrides == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError, "the policy has no overrides_active.");
        }
        goto done;
    }
    int overriding = PyObject_IsTrue(overrides);
    if (overriding < 0) {
        goto done;
    }
    int has_extension = 0;
    if (!overriding) {
        app = context_attribute(context, namespace, str_app);
        extensions = app == NULL ? NULL : PyObject_GetAttr(app, str_extensions);
        if (extensions == NULL) {
            goto done;
        }
        has_extension = PyDict_CheckExact(extensions) ? PyDict_Contains(extensions, self->extension_key)
                                                      : PySequence_Contains(extensions, self->extension_key);
        if (has_extension < 0) {
            goto done;
        }
    }
    if (overriding || has_extension) {
        result = PyObject_CallOneArg(self->fallback, context);
        goto done;
    }
    g = context_attribute(context, namespace, str_g);
    PyObject *g_namespace = g == NULL ? NULL : namespace_of(g, self->plain_g);
    if (g_namespace == NULL) {
        goto done;
    }
    values = PyDict_Check(g_namespace) ? PyDict_Copy(g_namespace) : PyObject_CallMethod(g_namespace, "copy", NULL);
    Py_DECREF(g_namespace);
    if (values == NULL) {
        goto done;
    }
    PyObject *state[] = {zero, context, values, Py_False};
    result = new_tuple(4, state);
done:
    Py_XDECREF(values);
    Py_XDECREF(g);
    Py_XDECREF(extensions);
    Py_XDECREF(app);
    Py_XDECREF(namespace);
    Py_DECREF(context);
    return result;
}

/* ForkApply(var, storable, attributes, fresh, fallback): the app provider's apply of a state
 * (mode, context, values, pushes). Mode 0 sets var to a fork of context: an object of its class holding the
 * same attributes, but a new g (of g's class, its namespace a copy of values) and new empty lists for the
 * names in fresh. When context's class is storable and holds exactly the names in attributes (one of them "g"),
 * the fork's attributes are stored one by one, in that order, which keeps them in the object itself on
 * CPython 3.11+ (as Flask's own __init__ does).
 * Any other mode: fallback(mode, context, values), the Python rules. */
typedef struct {
    HELPER_HEAD
    PyObject *var;
    PyObject *storable;
    PyObject *attributes;
    PyObject *fresh;
    PyObject *fallback;
} ForkApply;

/* The most attributes a fork stores one by one; a class holding more gets a copy of the parent's dict. */
#define MAX_STORED 8

/* Whether two attribute names are the same: the same object, as interned names mostly are, or equal strs. */
static inline int
same_name(PyObject *name, PyObject *other)
{
    return name == other || (PyUnicode_CheckExact(name) && PyUnicode_CheckExact(other) &&
                             PyUnicode_GET_LENGTH(name) == PyUnicode_GET_LENGTH(other) &&
                             PyUnicode_Compare(name, other) == 0);
}

static int
is_fresh(ForkApply *self, PyObject *name)
{
    Py_ssize_t count = PyTuple_GET_SIZE(self->fresh);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (same_name(PyTuple_GET_ITEM(self->fresh, i), name)) {
            return 1;
        }
    }
    return 0;
}

/* A new g of cls whose namespace is a copy of values. Not g's values stored one by one: g.get() reads
 * g.__dict__, which then builds a dict from them (more instructions than the copy, measured). */
static PyObject *
new_g(PyTypeObject *cls, PyObject *values)
{
    PyObject *copy = PyDict_Copy(values);
    if (copy == NULL) {
        return NULL;
    }
    PyObject *g = new_instance_with(cls, copy);
    Py_DECREF(copy);
    return g;
}

static PyObject *
ForkApply_call(ForkApply *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL || !PyTuple_Check(args[0]) ||
        PyTuple_GET_SIZE(args[0]) != 4) {
        PyErr_SetString(PyExc_TypeError, "apply() takes the state its capture made.");
        return NULL;
    }
    PyObject *state = args[0];
    PyObject *mode = PyTuple_GET_ITEM(state, 0), *context = PyTuple_GET_ITEM(state, 1);
    PyObject *values = PyTuple_GET_ITEM(state, 2);
    if (!PyLong_CheckExact(mode) || PyLong_AsLong(mode) != 0 || !PyDict_Check(values)) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return PyObject_CallFunctionObjArgs(self->fallback, mode, context, values, NULL);
    }
    PyObject *namespace = NULL, *g = NULL, *fork = NULL, *forked = NULL, *result = NULL;
    namespace = namespace_of(context, self->storable);
    if (namespace == NULL) {
        goto done;
    }
    PyObject *parent_g = PyDict_Check(namespace) ? PyDict_GetItemWithError(namespace, str_g) : NULL;
    if (parent_g == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "the captured app context has no g.");
        }
        goto done;
    }
    g = new_g(Py_TYPE(parent_g), values);
    fork = g == NULL ? NULL : new_instance(Py_TYPE(context));
    if (fork == NULL) {
        goto done;
    }
    /* Each attribute's value, borrowed; NULL for a fresh list. */
    PyObject *stored[MAX_STORED];
    Py_ssize_t count = PyTuple_GET_SIZE(self->attributes);
    int one_by_one = (PyObject *)Py_TYPE(context) == self->storable && count <= MAX_STORED &&
                     PyDict_GET_SIZE(namespace) == count;
    for (Py_ssize_t i = 0; one_by_one && i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(self->attributes, i);
        PyObject *value = PyDict_GetItemWithError(namespace, name);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            one_by_one = 0; /* as many attributes, not the same ones: copied as they are */
        }
        else {
            stored[i] = same_name(name, str_g) ? g : is_fresh(self, name) ? NULL : value;
        }
    }
    if (one_by_one) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *value = stored[i] != NULL ? Py_NewRef(stored[i]) : PyList_New(0);
            /* object.__setattr__, which the storable class keeps (see the provider), without the dispatch. */
            if (value == NULL || PyObject_GenericSetAttr(fork, PyTuple_GET_ITEM(self->attributes, i), value) < 0) {
                Py_XDECREF(value);
                goto done;
            }
            Py_DECREF(value);
        }
    }
    else {
        forked = PyDict_Copy(namespace);
        if (forked == NULL || PyDict_SetItem(forked, str_g, g) < 0 || fresh_lists(forked, self->fresh) < 0 ||
            PyObject_SetAttr(fork, str_dict, forked) < 0) {
            goto done;
        }
    }
    PyObject *token = PyContextVar_Set(self->var, fork);
    if (token == NULL) {
        goto done;
    }
    Py_DECREF(token);
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(forked);
    Py_XDECREF(fork);
    Py_XDECREF(g);
    Py_XDECREF(namespace);
    return result;
}

#define HELPER_TYPE(NAME, KINDS, DOC)                                                                         \
    static PyObject *NAME##_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)                          \
    {                                                                                                         \
        return helper_new(type, args, kwargs, (vectorcallfunc)NAME##_call, KINDS);                            \
    }                                                                                                         \
    static PyTypeObject NAME##Type = {                                                                        \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ctxsnap._speedups." #NAME,                                  \
        .tp_basicsize = sizeof(NAME),                                                                         \
        .tp_dealloc = (destructor)helper_dealloc,                                                             \
        .tp_vectorcall_offset = offsetof(Helper, vectorcall),                                                 \
        .tp_call = PyVectorcall_Call,                                                                         \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,                     \
        .tp_doc = PyDoc_STR(DOC),                                                                             \
        .tp_traverse = (traverseproc)helper_traverse,                                                         \
        .tp_clear = (inquiry)helper_clear,                                                                    \
        .tp_new = NAME##_new,                                                                                 \
    };

HELPER_TYPE(ViewCapture, "vdto",
            "ViewCapture(var, shared, fresh, plain)(): a view of the object var holds, or None.")
HELPER_TYPE(GCapture, "vdoooo",
            "GCapture(var, policy, extension_key, fallback, storable, plain_g)(): the app provider's capture.")
HELPER_TYPE(ForkApply, "votto",
            "ForkApply(var, storable, attributes, fresh, fallback)(state): the app provider's apply.")
/* -- module functions ---------------------------------------------------------------------------------- */

/* A ContextVarsSnapshot of base (borrowed), or of the current context when base is NULL. */
static PyObject *
bare_snapshot(PyObject *base)
{
    PyTypeObject *cls = (PyTypeObject *)bare_class;
    SnapshotCore *snapshot = (SnapshotCore *)cls->tp_alloc(cls, 0);
    if (snapshot == NULL) {
        return NULL;
    }
    snapshot->base = base != NULL ? Py_NewRef(base) : PyContext_CopyCurrent();
    if (snapshot->base == NULL) {
        Py_DECREF(snapshot);
        return NULL;
    }
    snapshot->entries = PyTuple_New(0);
    snapshot->undo = Py_NewRef(no_undo);
    snapshot->sealed = 0;
    return (PyObject *)snapshot;
}

/* new_bare(): a ContextVarsSnapshot of the current context, a contextvars-only capture in one call;
 * new_bare(base): one of the Context base. */
static PyObject *
new_bare(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1 || (nargs == 1 && !PyContext_CheckExact(args[0]))) {
        PyErr_SetString(PyExc_TypeError, "new_bare() takes no argument or one contextvars.Context.");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    return bare_snapshot(nargs == 1 ? args[0] : NULL);
}

/* run_task(carried, fn, args, kwargs): a submitted task, in a Context or a Snapshot (see ctxsnap._wrapping). */
static PyObject *
run_task(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyTuple_Check(args[2]) || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "run_task() takes (carried, fn, args: tuple, kwargs: dict).");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    PyObject *carried = args[0];
    Call call = {NULL, 0, NULL, args[2], args[3]};
    if (PyObject_TypeCheck(carried, &SnapshotCoreType)) {
        SnapshotCore *snapshot = (SnapshotCore *)carried;
        return run_in_snapshot(carried, snapshot->base, snapshot->entries, snapshot->undo, args[1], &call,
                               refuse_async_result);
    }
    if (!PyContext_CheckExact(carried)) {
        /* Any other snapshot-like object: its own _run. */
        return PyObject_CallMethod(carried, "_run", "OOO", args[1], args[2], args[3]);
    }
    return run_in_snapshot(carried, carried, NULL, NULL, args[1], &call, refuse_async_result);
}

/* take_entries(captures, base): ask each provider of captures, a plan's tuple of (provider, undo check or
 * None, capture, apply), for its state; a Snapshot of base and its entries (provider, state, apply for each,
 * flat), or None when no provider had anything to carry. The loop of ctxsnap._provider_states.take, with its
 * rules: a provider that raises (or whose undo check raises) fails the capture with capture_failed(provider,
 * exc), and nothing captured is kept. */
static PyObject *
take_states(PyObject *captures, PyObject *base)
{
    Py_ssize_t count = PyTuple_GET_SIZE(captures);
    /* Room for every provider's part; cut to those that had something to carry. */
    PyObject *entries = PyTuple_New(count * ENTRY_SIZE), *undoing = NULL, *result = NULL;
    Py_ssize_t taken = 0;
    if (entries == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* (provider, undo check, capture, apply), as the plan looked them up */
        PyObject *planned = PyTuple_GET_ITEM(captures, i);
        if (!PyTuple_CheckExact(planned) || PyTuple_GET_SIZE(planned) != 4) {
            PyErr_SetString(PyExc_TypeError, "a plan's capture is not (provider, undo check, capture, apply).");
            goto done;
        }
        PyObject *provider = PyTuple_GET_ITEM(planned, 0), *check = PyTuple_GET_ITEM(planned, 1);
        PyObject *state = PyObject_CallNoArgs(PyTuple_GET_ITEM(planned, 2));
        if (state == NULL) {
            raise_provider_failure(capture_failed, provider);
            goto done;
        }
        if (state == Py_None) {
            Py_DECREF(state);
            continue;
        }
        int needed = 0;
        if (check != Py_None) {
            PyObject *answer = PyObject_CallOneArg(check, state);
            needed = answer == NULL ? -1 : PyObject_IsTrue(answer);
            Py_XDECREF(answer);
            if (needed < 0) {
                Py_DECREF(state);
                raise_provider_failure(capture_failed, provider);
                goto done;
            }
        }
        PyTuple_SET_ITEM(entries, taken++, Py_NewRef(provider));
        PyTuple_SET_ITEM(entries, taken++, state);
        PyTuple_SET_ITEM(entries, taken++, Py_NewRef(PyTuple_GET_ITEM(planned, 3)));
        if (needed) {
            PyObject *identity = PyLong_FromVoidPtr(provider);
            if (undoing == NULL) {
                undoing = PyList_New(0);
            }
            if (identity == NULL || undoing == NULL || PyList_Append(undoing, identity) < 0) {
                Py_XDECREF(identity);
                goto done;
            }
            Py_DECREF(identity);
        }
    }
    if (taken == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (taken < count * ENTRY_SIZE) {
        Py_SETREF(entries, PyTuple_GetSlice(entries, 0, taken));
        if (entries == NULL) {
            goto done;
        }
    }
    PyTypeObject *cls = (PyTypeObject *)snapshot_class;
    SnapshotCore *snapshot = (SnapshotCore *)cls->tp_alloc(cls, 0);
    if (snapshot == NULL) {
        goto done;
    }
    snapshot->base = Py_NewRef(base);
    snapshot->entries = Py_NewRef(entries);
    snapshot->undo = undoing == NULL ? Py_NewRef(no_undo) : PyFrozenSet_New(undoing);
    snapshot->sealed = 0;
    if (snapshot->entries == NULL || snapshot->undo == NULL) {
        Py_DECREF(snapshot);
        goto done;
    }
    result = (PyObject *)snapshot;
done:
    Py_XDECREF(undoing);
    Py_XDECREF(entries);
    return result;
}

static PyObject *
take_entries(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyTuple_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "take_entries() takes (captures: tuple, base).");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    return take_states(args[0], args[1]);
}

/* -- capture() ----------------------------------------------------------------------------------------- */

/* capture()'s hot path, ctxsnap._capture.capture without its Python frame (about 1,000 instructions of a
 * capture, issue 14): the default capture's cached plan, checked against the registry as the Python function
 * does, and a capture with providers that carries every ContextVar. Everything else (a selection, a stale
 * plan, a plan that leaves variables out) calls that function, which keeps every rule and error. */
static PyObject *capture_python;  /* ctxsnap._capture.capture */
static PyObject *capture_planned; /* the PlannedCapture of the default capture */
/* The registry's namespace: its attributes, read without a lookup on its class. */
static PyObject *capture_registry;
static PyObject *capture_modules; /* sys.modules */
/* What the plan last seen holds; read again when capture_planned._plan is another object. */
static PyObject *seen_plan, *seen_version, *seen_captures;
static int seen_bare, seen_plain_base;
static PyObject *str_plan, *str_version, *str_modules_seen, *str_settled, *str_bare, *str_plain_base,
    *str_captures, *str_include, *str_exclude;

static int
true_attribute(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    int answer = value == NULL ? -1 : PyObject_IsTrue(value);
    Py_XDECREF(value);
    return answer;
}

static int
see_plan(PyObject *plan)
{
    PyObject *version = PyObject_GetAttr(plan, str_version);
    PyObject *captures = version == NULL ? NULL : PyObject_GetAttr(plan, str_captures);
    int bare = captures == NULL ? -1 : true_attribute(plan, str_bare);
    int plain_base = bare < 0 ? -1 : true_attribute(plan, str_plain_base);
    if (plain_base < 0 || !PyTuple_Check(captures)) {
        Py_XDECREF(version);
        Py_XDECREF(captures);
        return plain_base < 0 ? -1 : 0;
    }
    Py_XSETREF(seen_plan, Py_NewRef(plan));
    Py_XSETREF(seen_version, version);
    Py_XSETREF(seen_captures, captures);
    seen_bare = bare;
    seen_plain_base = plain_base;
    return 1;
}

/* One of the registry's attributes, borrowed; NULL with an error when it has none. */
static PyObject *
registry_attribute(PyObject *name)
{
    PyObject *value = PyDict_GetItemWithError(capture_registry, name);
    if (value == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_AttributeError, "the registry has no attribute %R.", name);
    }
    return value;
}

/* 1 when the default capture's plan holds for the registry as it is now, 0 when not, -1 on an error. */
static int
plan_holds(void)
{
    PyObject *plan = PyObject_GetAttr(capture_planned, str_plan);
    if (plan == NULL) {
        return -1;
    }
    int seen = plan == seen_plan ? 1 : see_plan(plan);
    Py_DECREF(plan);
    if (seen <= 0) {
        return seen;
    }
    PyObject *version = registry_attribute(str_version);
    int same = version == NULL ? -1 : PyObject_RichCompareBool(version, seen_version, Py_EQ);
    if (same <= 0) {
        return same;
    }
    PyObject *modules_seen = registry_attribute(str_modules_seen);
    Py_ssize_t count = modules_seen == NULL ? -1 : PyLong_AsSsize_t(modules_seen);
    if (count == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (PyDict_Check(capture_modules) && PyDict_GET_SIZE(capture_modules) == count) {
        return 1;
    }
    PyObject *settled = registry_attribute(str_settled);
    return settled == NULL ? -1 : PyObject_IsTrue(settled);
}

static PyObject *
capture(PyObject *module, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    if (!configured()) {
        return NULL;
    }
    int plain = PyVectorcall_NARGS(nargsf) == 0;
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; plain && i < keywords; i++) {
        /* capture(include=None, exclude=None), as ctxsnap.wrap(fn) calls it, is the default capture too. */
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        plain = args[i] == Py_None && (same_name(name, str_include) || same_name(name, str_exclude));
    }
    int holds = plain ? plan_holds() : 0;
    if (holds < 0) {
        return NULL;
    }
    if (holds && seen_bare) {
        return bare_snapshot(NULL);
    }
    if (!holds || !seen_plain_base) {
        return PyObject_Vectorcall(capture_python, args, nargsf, kwnames);
    }
    PyObject *base = PyContext_CopyCurrent();
    if (base == NULL) {
        return NULL;
    }
    PyObject *taken = take_states(seen_captures, base);
    if (taken == Py_None) {
        Py_SETREF(taken, bare_snapshot(base));
    }
    Py_DECREF(base);
    return taken;
}

/* capture_function(doc, python, planned, registry_namespace, modules): the compiled capture(), documented as
 * doc (a signature line, "--" and the Python function's docstring) and named as python is. */
static PyMethodDef capture_def = {"capture", (PyCFunction)(void (*)(void))capture, METH_FASTCALL | METH_KEYWORDS,
                                  NULL};

static PyObject *
capture_function(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyUnicode_Check(args[0]) || !PyDict_Check(args[3]) || !PyDict_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "capture_function() takes (doc: str, python, planned, "
                                         "registry_namespace: dict, modules: dict).");
        return NULL;
    }
    Py_ssize_t size;
    const char *doc = PyUnicode_AsUTF8AndSize(args[0], &size);
    PyObject *name = doc == NULL ? NULL : PyObject_GetAttrString(args[1], "__module__");
    if (name == NULL) {
        return NULL;
    }
    /* ml_doc lives as long as the functions made from capture_def: a doc given before (ctxsnap._capture
     * imported again) is kept, not freed, and the state is the latest call's. */
    char *kept = PyMem_RawMalloc((size_t)size + 1);
    if (kept == NULL) {
        Py_DECREF(name);
        return PyErr_NoMemory();
    }
    memcpy(kept, doc, (size_t)size + 1);
    capture_def.ml_doc = kept;
    Py_XSETREF(capture_python, Py_NewRef(args[1]));
    Py_XSETREF(capture_planned, Py_NewRef(args[2]));
    Py_XSETREF(capture_registry, Py_NewRef(args[3]));
    Py_XSETREF(capture_modules, Py_NewRef(args[4]));
    Py_CLEAR(seen_plan); /* a plan of the previous PlannedCapture is not this one's */
    PyObject *function = PyCFunction_NewEx(&capture_def, NULL, name);
    Py_DECREF(name);
    return function;
}

static int
take(PyObject *kwargs, const char *name, PyObject **slot)
{
    PyObject *value = PyDict_GetItemString(kwargs, name);
    if (value == NULL) {
        PyErr_Format(PyExc_TypeError, "configure() needs %s=.", name);
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
    return 0;
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    if (kwargs == NULL || PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "configure() takes keyword arguments only.");
        return NULL;
    }
    PyObject *flags = NULL;
    if (take(kwargs, "raise_sealed", &raise_sealed) < 0 || take(kwargs, "check_callable", &check_callable) < 0 ||
        take(kwargs, "raise_async", &raise_async) < 0 ||
        take(kwargs, "refuse_async_run", &refuse_async_run) < 0 ||
        take(kwargs, "refuse_async_result", &refuse_async_result) < 0 ||
        take(kwargs, "apply_failed", &apply_failed) < 0 ||
        take(kwargs, "capture_failed", &capture_failed) < 0 ||
        take(kwargs, "snapshot_class", &snapshot_class) < 0 ||
        take(kwargs, "forget_captured", &forget_captured) < 0 ||
        take(kwargs, "apply_run_undo", &apply_run_undo) < 0 ||
        take(kwargs, "async_results", &async_results) < 0 || take(kwargs, "no_undo", &no_undo) < 0 ||
        take(kwargs, "async_flags", &flags) < 0) {
        return NULL;
    }
    async_flags = (int)PyLong_AsLong(flags);
    Py_DECREF(flags);
    if (async_flags == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyFrozenSet_Check(async_results) || !PyFrozenSet_Check(no_undo)) {
        PyErr_SetString(PyExc_TypeError, "configure() needs frozensets for async_results= and no_undo=.");
        return NULL;
    }
    /* Last: configured() reads it. */
    if (take(kwargs, "bare_class", &bare_class) < 0) {
        return NULL;
    }
    if (!PyType_Check(bare_class) || !PyType_IsSubtype((PyTypeObject *)bare_class, &SnapshotCoreType)) {
        Py_CLEAR(bare_class);
        PyErr_SetString(PyExc_TypeError, "configure() needs a subclass of SnapshotCore as bare_class=.");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("Hand over the Python side's error paths and constants (ctxsnap._snapshot calls it).")},
    {"new_bare", (PyCFunction)(void (*)(void))new_bare, METH_FASTCALL,
     PyDoc_STR("new_bare(base=None): a ContextVarsSnapshot of base, or of the current context.")},
    {"take_entries", (PyCFunction)(void (*)(void))take_entries, METH_FASTCALL,
     PyDoc_STR("take_entries(captures, base): a Snapshot of what the providers carry, or None.")},
    {"capture_function", (PyCFunction)(void (*)(void))capture_function, METH_FASTCALL,
     PyDoc_STR("capture_function(doc, python, planned, registry, modules): the compiled capture().")},
    {"run_task", (PyCFunction)(void (*)(void))run_task, METH_FASTCALL,
     PyDoc_STR("run_task(carried, fn, args, kwargs): run a submitted task in what was captured for it.")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ctxsnap._speedups",
    .m_doc = PyDoc_STR("The compiled run path of ctxsnap (issue 14); ctxsnap._run_path is its pure-Python twin."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&SnapshotCoreType) < 0) {
        return NULL;
    }
    str_run = PyUnicode_InternFromString("run");
    if (str_run == NULL) {
        return NULL;
    }
    if (PyType_Ready(&ViewCaptureType) < 0 || PyType_Ready(&GCaptureType) < 0 || PyType_Ready(&ForkApplyType) < 0) {
        return NULL;
    }
    str_dict = PyUnicode_InternFromString("__dict__");
    str_overrides_active = PyUnicode_InternFromString("overrides_active");
    str_app = PyUnicode_InternFromString("app");
    str_extensions = PyUnicode_InternFromString("extensions");
    str_g = PyUnicode_InternFromString("g");
    str_plan = PyUnicode_InternFromString("_plan");
    str_version = PyUnicode_InternFromString("version");
    str_modules_seen = PyUnicode_InternFromString("modules_seen");
    str_settled = PyUnicode_InternFromString("settled");
    str_bare = PyUnicode_InternFromString("bare");
    str_plain_base = PyUnicode_InternFromString("plain_base");
    str_captures = PyUnicode_InternFromString("captures");
    str_include = PyUnicode_InternFromString("include");
    str_exclude = PyUnicode_InternFromString("exclude");
    if (str_plan == NULL || str_version == NULL || str_modules_seen == NULL || str_settled == NULL ||
        str_bare == NULL || str_plain_base == NULL || str_captures == NULL || str_include == NULL ||
        str_exclude == NULL) {
        return NULL;
    }
    empty_tuple = PyTuple_New(0);
    zero = PyLong_FromLong(0);
    if (zero == NULL || str_dict == NULL || str_overrides_active == NULL || str_app == NULL ||
        str_extensions == NULL || str_g == NULL || empty_tuple == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    PyTypeObject *types[] = {&SnapshotCoreType, &ViewCaptureType, &GCaptureType, &ForkApplyType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyModule_AddType(module, types[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
