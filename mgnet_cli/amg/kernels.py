"""The AMG setup's sequential loops, compiled by Numba (``njit``, serial, cached in ``__pycache__``):
the Ruge-Stueben first pass (``first_pass``: one greedy choice after another, nothing to vectorise)
and the classical / extended+i interpolation weights (``interpolation_weights``: one F row at a
time, as the formulas read, instead of the sparse products and look-ups that needed six passes over
the matrix). Each takes and returns plain CSR arrays; splitting.py and interpolation.py wrap them.
The first call of each compiles it (a few seconds) or loads it from the cache (docs/amg.md, "Setup").
"""

import numba
import numpy as np

UNASSIGNED, COARSE, FINE = 0, 1, 2


@numba.njit(cache=True)
def _key(point: int, measure: int) -> int:
    """One int64 that orders points as the first pass takes them: larger measure, then smaller index."""
    return point - (measure << 32)


@numba.njit(cache=True)
def _push(heap: np.ndarray, size: int, key: int) -> int:
    """Add ``key`` to the binary min-heap of ``size`` entries; answers the new size."""
    at = size
    while at > 0:
        parent = (at - 1) >> 1
        if heap[parent] <= key:
            break
        heap[at] = heap[parent]
        at = parent
    heap[at] = key
    return size + 1


@numba.njit(cache=True)
def _pop(heap: np.ndarray, size: int) -> int:
    """Remove the least key of the heap (``size`` > 0 entries, the caller keeps the count)."""
    size -= 1
    last = heap[size]
    at = 0
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if last <= heap[child]:
            break
        heap[at] = heap[child]
        at = child
    heap[at] = last
    return size


@numba.njit(cache=True)
def first_pass(S_ptr: np.ndarray, S_idx: np.ndarray, T_ptr: np.ndarray, T_idx: np.ndarray,
               state: np.ndarray) -> None:
    """Ruge-Stueben's first pass on the strength pattern S (i depends on S_idx[S_ptr[i]:S_ptr[i+1]])
    and its transpose T; ``state`` (UNASSIGNED or FINE on entry) ends COARSE or FINE.

    The next point is the least key (``_key``) of two sources: the unassigned points at their
    starting measures, sorted once and read by a cursor (most are never touched again), and a heap
    of the points whose measure rose, filed anew at each rise. A measure that falls is not re-filed
    at once: its stale (higher) entry, met first, is filed anew then. So the points are taken in
    exactly the order of a full scan for the largest measure (ties to the smaller index)."""
    measure = np.diff(T_ptr).astype(np.int64)  # how many points depend on each
    points = np.flatnonzero(state == UNASSIGNED)
    initial = np.sort(points - (measure[points] << 32))
    heap = np.empty(points.size + 2 * S_idx.size, dtype=np.int64)  # each rise and fall files once
    size, cursor = 0, 0
    while cursor < initial.size or size > 0:
        if size == 0 or (cursor < initial.size and initial[cursor] < heap[0]):
            key = initial[cursor]
            cursor += 1
        else:
            key = heap[0]
            size = _pop(heap, size)
        i = key & 0xFFFFFFFF
        if state[i] != UNASSIGNED:
            continue
        filed = (i - key) >> 32
        if filed != measure[i]:
            if filed > measure[i]:  # fell since it was filed: file it where it is now
                size = _push(heap, size, _key(i, measure[i]))
            continue  # (below: a later entry files it at its present measure)
        state[i] = COARSE
        for j in T_idx[T_ptr[i]:T_ptr[i + 1]]:  # j depends on i: j is F
            if state[j] != UNASSIGNED:
                continue
            state[j] = FINE
            for k in S_idx[S_ptr[j]:S_ptr[j + 1]]:  # what j depends on gains weight
                if state[k] == UNASSIGNED:
                    measure[k] += 1
                    size = _push(heap, size, _key(k, measure[k]))
        for j in S_idx[S_ptr[i]:S_ptr[i + 1]]:  # what i depends on loses weight (re-filed when met)
            if state[j] == UNASSIGNED:
                measure[j] -= 1
