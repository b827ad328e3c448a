"""The AMG setup's loops, compiled by Numba (``njit``: serial, cached beside this file in
``__pycache__``), each on plain CSR arrays and wrapped by splitting.py or interpolation.py:

- ``first_pass``: Ruge-Stueben's first pass, one greedy choice after another (nothing to vectorise;
  as a Python loop it was half of the setup);
- ``second_pass_rounds``: its second pass, the same rounds as the former vectorised code;
- ``interpolation_weights``: classical and extended+i weights one F row at a time, as the formulas
  read (the sparse products and look-ups they replace made about ten passes over the matrix);
- ``strong_pattern``: classical strength, two passes over each row.
- ``lower_solve``, ``upper_solve``: the cycle's Gauss-Seidel sweeps, ``(D + L)^-1 r`` and ``(D + U)^-1 r``
  read straight off the rows (a recurrence; a sweep costs about one product with the matrix, 10 ms
  at jumps n = 1023 against SciPy SuperLU's 17-18 ms on a factored triangle, and needs no factor).

Jumps n = 1023 (1 M rows), all levels, one core: 9.2 -> 2.9 CPU s for the defaults' hierarchy
(docs/amg.md, "Setup"). Numba is imported by the setup's first call only (not by ``mgnet --help``
or a geometric solve); a kernel's first call compiles it (all of them: about 10 s, once) or loads
it from the cache (about 0.3 s).
"""

import numba
import numpy as np

UNASSIGNED, COARSE, FINE = 0, 1, 2


def pattern(M) -> tuple[np.ndarray, np.ndarray]:
    """A CSR matrix's row pointers and column indices as int64: the kernels see one type (SciPy
    answers int32 or int64), so each is compiled once."""
    return M.indptr.astype(np.int64, copy=False), M.indices.astype(np.int64, copy=False)


@numba.njit(cache=True)
def _key(point: int, measure: int) -> int:
    """One int64 that orders points as the first pass takes them: larger measure, then smaller index
    (points < 2^32, measures < 2^31)."""
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


@numba.njit(cache=True)
def _weight_bound(S_ptr: np.ndarray, S_idx: np.ndarray, is_c: np.ndarray, extended: bool) -> int:
    """At most this many interpolation weights: each F row's strong C neighbours, and (``extended``)
    those of its strong F neighbours, counted with repeats."""
    c_count = np.zeros(is_c.size, dtype=np.int64)
    for i in range(is_c.size):
        for j in S_idx[S_ptr[i]:S_ptr[i + 1]]:
            if is_c[j]:
                c_count[i] += 1
    bound = 0
    for i in range(is_c.size):
        if is_c[i]:
            continue
        bound += c_count[i]
        if extended:
            for k in S_idx[S_ptr[i]:S_ptr[i + 1]]:
                if not is_c[k]:
                    bound += c_count[k]
    return bound


@numba.njit(cache=True)
def _mark_reach(i: int, S: tuple, is_c: np.ndarray, extended: bool, marks: tuple, cols: np.ndarray,
                start: int) -> int:
    """The C points F point i interpolates from into ``cols[start:end]`` (end answered), each marked
    ``reach[j] == i`` with its place ``slot[j]``: i's strong C neighbours and (``extended``) those
    of its strong F neighbours."""
    S_ptr, S_idx = S
    reach, slot = marks[0], marks[1]
    end = start
    for k in S_idx[S_ptr[i]:S_ptr[i + 1]]:
        row = S_idx[S_ptr[k]:S_ptr[k + 1]] if extended and not is_c[k] else S_idx[0:0]
        for j in row:
            if is_c[j] and reach[j] != i:
                reach[j], slot[j], cols[end] = i, end, j
                end += 1
        if is_c[k] and reach[k] != i:
            reach[k], slot[k], cols[end] = i, end, k
            end += 1
    return end


@numba.njit(cache=True)
def _couplings(i: int, A: tuple, S: tuple, marks: tuple, direct: np.ndarray) -> tuple[float, float, float]:
    """Row i's off-diagonal couplings: each a_ij to an interpolation point into ``direct``, each
    filed in ``value[j]`` (``in_row[j] == i``); answers their sums in column order: all, to the
    interpolation points, and the weak ones (not strong)."""
    A_ptr, A_idx, A_val = A[0], A[1], A[2]
    S_ptr, S_idx = S
    reach, slot, in_row, strong, value = marks
    for j in S_idx[S_ptr[i]:S_ptr[i + 1]]:
        strong[j] = i
    off_sum, reach_sum, weak = 0.0, 0.0, 0.0
    for at in range(A_ptr[i], A_ptr[i + 1]):
        j, a = A_idx[at], A_val[at]
        if j == i or a == 0:
            continue
        in_row[j], value[j] = i, a
        off_sum += a
        if reach[j] == i:
            direct[slot[j]] = a
            reach_sum += a
        if strong[j] != i:
            weak += a
    return off_sum, reach_sum, weak


@numba.njit(cache=True)
def _hand_on(i: int, A: tuple, S: tuple, is_c: np.ndarray, extended: bool, marks: tuple,
             handed: np.ndarray) -> tuple[float, float, float]:
    """Each strong F neighbour k of F point i hands a_ik on to i's interpolation points (into
    ``handed``) in proportion to its negative couplings to them; answers, summed over k: a_ik,
    what goes to i itself (extended+i), and a_ik lumped where k reaches none of them (d_ik = 0)."""
    A_ptr, A_idx, A_val = A[0], A[1], A[2]
    S_ptr, S_idx = S
    reach, slot, in_row, value = marks[0], marks[1], marks[2], marks[4]
    f_sum, to_i, lumped = 0.0, 0.0, 0.0
    for k in S_idx[S_ptr[i]:S_ptr[i + 1]]:
        if is_c[k] or in_row[k] != i:
            continue
        a_ik = value[k]
        f_sum += a_ik
        d, back = 0.0, 0.0
        for at in range(A_ptr[k], A_ptr[k + 1]):
            l, a = A_idx[at], A_val[at]
            if l != k and a < 0:
                if reach[l] == i:
                    d += a
                elif extended and l == i:
                    back = a
        d += back
        if d == 0:
            lumped += a_ik
            continue
        ratio = a_ik / d
        if extended:
            to_i += a_ik * back / d
        for at in range(A_ptr[k], A_ptr[k + 1]):
            l, a = A_idx[at], A_val[at]
            if l != k and a < 0 and reach[l] == i:
                handed[slot[l]] += ratio * a
    return f_sum, to_i, lumped


@numba.njit(cache=True)
def _sort_row(cols: np.ndarray, values: np.ndarray, start: int, end: int) -> None:
    """Insertion sort of one row's (column, value) pairs by column (rows are short)."""
    for at in range(start + 1, end):
        col, value = cols[at], values[at]
        back = at - 1
        while back >= start and cols[back] > col:
            cols[back + 1], values[back + 1] = cols[back], values[back]
            back -= 1
        cols[back + 1], values[back + 1] = col, value


@numba.njit(cache=True)
def interpolation_weights(A_ptr: np.ndarray, A_idx: np.ndarray, A_val: np.ndarray, diagonal: np.ndarray,
                          S_ptr: np.ndarray, S_idx: np.ndarray, is_c: np.ndarray, extended: bool
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The F rows' weights of classical (``extended`` False) or extended+i interpolation (formulas in
    interpolation.py), one F row at a time: rows (ascending), fine column indices (ascending within
    a row) and weights, exact zeros left out. A is canonical CSR; S its strength pattern, no diagonal.
    The sums run in the order of the former sparse products, so the weights agree to round-off."""
    n = is_c.size
    A, S = (A_ptr, A_idx, A_val), (S_ptr, S_idx)
    bound = _weight_bound(S_ptr, S_idx, is_c, extended)
    rows, cols = np.empty(bound, dtype=np.int64), np.empty(bound, dtype=np.int64)
    direct, handed = np.zeros(bound), np.zeros(bound)  # a_ij, and what strong F neighbours hand on
    marks = (np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64),  # reach, slot
             np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.zeros(n))  # in_row, strong, value
    count = 0
    for i in range(n):
        if is_c[i]:
            continue
        start = count
        end = _mark_reach(i, S, is_c, extended, marks, cols, start)
        direct[start:end], handed[start:end] = 0.0, 0.0
        off_sum, reach_sum, weak = _couplings(i, A, S, marks, direct)
        f_sum, to_i, lumped = _hand_on(i, A, S, is_c, extended, marks, handed)
        if extended:  # weak: what is neither to an interpolation point nor a strong F coupling
            denominator = diagonal[i] + (off_sum - reach_sum - f_sum) + to_i + lumped
        else:
            denominator = diagonal[i] + weak + lumped
        for at in range(start, end):
            numerator = direct[at] + handed[at]
            if numerator != 0:
                rows[count], cols[count], direct[count] = i, cols[at], -numerator / denominator
                count += 1
        _sort_row(cols, direct, start, count)
    return rows[:count], cols[:count], direct[:count].copy()


@numba.njit(cache=True)
def _unserved(S_ptr: np.ndarray, S_idx: np.ndarray, is_c: np.ndarray, rows: np.ndarray, cols: np.ndarray,
              stamp: np.ndarray) -> int:
    """Keep (in place, in order) the pairs whose two points depend strongly on no common C point;
    answers how many. ``rows`` ascending: each row's C neighbours are stamped once."""
    kept, marked = 0, -1
    for at in range(rows.size):
        i, j = rows[at], cols[at]
        if i != marked:
            for x in S_idx[S_ptr[i]:S_ptr[i + 1]]:
                stamp[x] = i
            marked = i
        served = False
        for x in S_idx[S_ptr[j]:S_ptr[j + 1]]:
            if is_c[x] and stamp[x] == i:
                served = True
                break
        if not served:
            rows[kept], cols[kept] = i, j
            kept += 1
    return kept


@numba.njit(cache=True)
def second_pass_rounds(S_ptr: np.ndarray, S_idx: np.ndarray, is_c: np.ndarray, rows: np.ndarray,
                       cols: np.ndarray) -> None:
    """Ruge-Stueben's second pass on the strong F-F pairs (rows ascending), ``is_c`` updated in place:
    each round, the F points whose (unserved pairs, index) beats every unserved partner's become C,
    until every pair shares a C point."""
    n = is_c.size
    stamp = np.full(n, -1, dtype=np.int64)
    count, best = np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    size = rows.size
    while True:
        size = _unserved(S_ptr, S_idx, is_c, rows[:size], cols[:size], stamp)
        if size == 0:
            return
        for at in range(size):
            count[rows[at]] += 1
            count[cols[at]] += 1
        for at in range(size):  # the best (count, index) among each point's partners
            i, j = rows[at], cols[at]
            best[i] = max(best[i], (count[j] << 32) + j)
            best[j] = max(best[j], (count[i] << 32) + i)
        for at in range(size):
            for p in (rows[at], cols[at]):
                if best[p] >= 0 and (count[p] << 32) + p > best[p]:
                    is_c[p] = True
        kept = 0
        for at in range(size):
            i, j = rows[at], cols[at]
            count[i], count[j], best[i], best[j] = 0, 0, -1, -1
            if not is_c[i] and not is_c[j]:
                rows[kept], cols[kept] = i, j
                kept += 1
        size = kept


@numba.njit(cache=True)
def _strong_in_row(i: int, A_ptr: np.ndarray, A_idx: np.ndarray, A_val: np.ndarray, theta: float,
                   out: np.ndarray, start: int) -> int:
    """Row i's strong dependencies (classical: -a_ij >= theta max_k -a_ik > 0, j != i) into
    ``out[start:end]``; answers end. ``out`` may be empty (counting only)."""
    largest = 0.0
    for at in range(A_ptr[i], A_ptr[i + 1]):
        if A_idx[at] != i:
            largest = max(largest, -A_val[at])
    end = start
    for at in range(A_ptr[i], A_ptr[i + 1]):
        j, value = A_idx[at], -A_val[at]
        if j != i and value > 0 and value >= theta * largest:
            if out.size:
                out[end] = j
            end += 1
    return end


@numba.njit(cache=True)
def strong_pattern(A_ptr: np.ndarray, A_idx: np.ndarray, A_val: np.ndarray, theta: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The classical strength pattern of a canonical CSR matrix: row pointers and column indices."""
    n = A_ptr.size - 1
    S_ptr = np.zeros(n + 1, dtype=np.int64)
    nothing = np.empty(0, dtype=np.int64)
    for i in range(n):
        S_ptr[i + 1] = S_ptr[i] + _strong_in_row(i, A_ptr, A_idx, A_val, theta, nothing, 0)
    S_idx = np.empty(S_ptr[n], dtype=np.int64)
    for i in range(n):
        _strong_in_row(i, A_ptr, A_idx, A_val, theta, S_idx, S_ptr[i])
    return S_ptr, S_idx


@numba.njit(cache=True, nogil=True)
def lower_solve(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, r: np.ndarray) -> np.ndarray:
    x = np.empty_like(r)
    for i in range(r.shape[0]):
        total, diagonal = r[i], 0.0
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j < i:
                total -= data[k] * x[j]
            elif j == i:
                diagonal += data[k]
        x[i] = total / diagonal
    return x


@numba.njit(cache=True, nogil=True)
def upper_solve(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, r: np.ndarray) -> np.ndarray:
    x = np.empty_like(r)
    for i in range(r.shape[0] - 1, -1, -1):
        total, diagonal = r[i], 0.0
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j > i:
                total -= data[k] * x[j]
            elif j == i:
                diagonal += data[k]
        x[i] = total / diagonal
    return x
