/* ctxsnap._speedups: the compiled run path (issue 14). Placeholder while the build is set up. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "ctxsnap._speedups", NULL, 0, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
