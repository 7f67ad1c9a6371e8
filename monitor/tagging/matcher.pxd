# C types for matcher.py, which Cython compiles as it is (pure-Python mode): each
# declaration here makes a function, class or local of that file a C one when
# compiled, and changes nothing when it runs as Python. The algorithm is in the
# .py file alone; this file only says how to store what it uses.
import cython


cdef class _Tables:
    cdef list rule_id, kind, label
    cdef list actor_rank, actor_side, actor_kind, actor_listable
    cdef list exclusion_rank, exclusion_sides, exclusion_kinds
    cdef list trigger_rank, trigger_signal, trigger_has_near, trigger_sides
    cdef list enumerations
    cdef Py_ssize_t window


cdef dict _TABLES
cdef Py_ssize_t _ROLES, _SEPARATOR_LENGTH, _INDEX_ABOVE
cdef long long _END_BITS, _RANK_BITS, _PLACE_MASK
cdef long long _ORDER_EXCLUSION, _ORDER_ACTOR, _ORDER_SIGNAL
cdef object _new_tuple
cdef tuple _SIDES_OF_MASK


@cython.locals(cached=tuple, tables=_Tables)
cdef _Tables _tables(object rules)


@cython.locals(
    start=Py_ssize_t, plain_end=Py_ssize_t, end=Py_ssize_t, entry=tuple, hits=object
)
cdef void _read_entries(
    str scanned,
    Py_ssize_t key_start,
    Py_ssize_t last,
    bint lead,
    bint trail,
    tuple entries,
    list by_role,
) except *


@cython.locals(
    by_role=list, payloads=list, match=tuple, automaton=object, payload=tuple, key_start=Py_ssize_t,
    last=Py_ssize_t,
)
cdef void _scan_matches(
    str scanned,
    object rules,
    list actors,
    list exclusions,
    list countries,
    list later,
) except *


@cython.locals(
    tables=_Tables,
    title_text=str,
    summary_text=str,
    title_length=Py_ssize_t,
    summary_length=Py_ssize_t,
    joined=str,
    scanned=str,
    summary_start=Py_ssize_t,
    actor_hits=list,
    exclusion_hits=list,
    country_hits=list,
    later=list,
    rows=list,
    counted=list,
    side_mask=int,
    signal_mask=int,
    hit=tuple,
    relevant=bint,
    signals=tuple,
    notes=list,
    n=Py_ssize_t,
    ordered=tuple,
)
cdef tuple _scan(object title, object summary, object rules, object lang)


@cython.locals(
    members=list,
    listed=set,
    run=list,
    member=tuple,
    hit=tuple,
    gap=str,
    min_items=Py_ssize_t,
    gap_words=Py_ssize_t,
    gap_start=Py_ssize_t,
    gap_end=Py_ssize_t,
    start=Py_ssize_t,
    end=Py_ssize_t,
    country=bint,
)
cdef list _unlisted(list actor_hits, list country_hits, str joined, _Tables tables, list rows)


@cython.locals(
    counted=list,
    used=list,
    hit=tuple,
    exclusion=tuple,
    side_bit=Py_ssize_t,
    explained=bint,
    number=Py_ssize_t,
    rule=Py_ssize_t,
    rank=Py_ssize_t,
)
cdef list _explain(list actor_hits, list exclusion_hits, _Tables tables, list rows)


cdef class _Mentions:
    cdef list sentences, tokens, labels
    cdef bint indexed
    cdef dict by_sentence

    cdef void add(self, Py_ssize_t sentence, Py_ssize_t token, long label) except *
    cdef void index(self) except *

    @cython.locals(found=long, number=Py_ssize_t, other=Py_ssize_t, high=Py_ssize_t)
    cdef long near(self, Py_ssize_t sentence, Py_ssize_t token, Py_ssize_t window) except -1


@cython.locals(
    trigger_hits=list,
    near_hits=list,
    unless_hits=list,
    by_role=list,
    key_start=Py_ssize_t,
    last=Py_ssize_t,
    payload=tuple,
    located=list,
    sentences=list,
    tokens=list,
    number=Py_ssize_t,
    side=Py_ssize_t,
    window=Py_ssize_t,
    actors=_Mentions,
    mentions=_Mentions,
    wanted=set,
    nears=dict,
    unless=set,
    accepted=list,
    hit=tuple,
    rule=Py_ssize_t,
    sentence=Py_ssize_t,
    token=Py_ssize_t,
    sides=long,
)
cdef list _accepted_triggers(
    str scanned, list later, list actor_hits, str joined, Py_ssize_t separator_at, _Tables tables
)


cdef long long _row(long long start, long long order, long long end, long long rank)


@cython.locals(
    kept=list,
    seen=dict,
    omitted=Py_ssize_t,
    previous=cython.longlong,
    row=cython.longlong,
    place=cython.longlong,
    rank=Py_ssize_t,
    count=Py_ssize_t,
    start=Py_ssize_t,
    end=Py_ssize_t,
    text=str,
)
cdef tuple _ordered(list rows, list notes, _Tables tables, str joined, Py_ssize_t summary_start)
