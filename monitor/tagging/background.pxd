# C types for background.py, which Cython compiles as it is (see matcher.pxd).
import cython


cdef tuple _SENTENCE_MARKS


@cython.locals(
    rows=list, reasons=dict, reported=dict, in_headline=dict, headline_signals=set,
    index=Py_ssize_t, trigger_id=object, answer=object, candidates=list, cued=dict, text=str,
    remaining=set, counted=set, background=tuple, aside=set, notes=tuple,
)
cpdef object set_aside(object result, str title_text, str summary_text, object rules)


@cython.locals(sentence_start=Py_ssize_t, words=list, ends=list)
cdef object _cue_at(object cue, str text, Py_ssize_t start, Py_ssize_t end)


cdef object _note(object row, str reason)
