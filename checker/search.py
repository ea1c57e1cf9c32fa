"""The two searches: linearizability (Wing-Gong-Lowe) and sequential consistency, for one key.

Both take one key's operations and answer True (a legal order exists), False (none does) or
None (the budget ran out first). Failed operations are left out (they did not happen), so are
reads that did not return (they showed nothing). ``info`` updates are optional: the search
may place them anywhere they are allowed, or never; ``ok`` operations must all be placed.

Linearizability is Lowe's version of the Wing-Gong search, as Porcupine and Knossos run it:
the invoke and return events sit in a doubly linked list in real-time order; an operation can
be placed next when its invoke comes before the first return still in the list; a placed
operation is lifted out with its return, and put back when the search backtracks. Two
prunings make it fast: each (placed-set bitset, state) configuration is visited once, and a
read that is legal where it stands is placed without branching (a read changes no state, so
placing it as early as allowed never closes a door another order would keep open).

Sequential consistency drops the real-time constraint: each process's operations keep their
program order, and the search interleaves the processes, with the same memo and the same
read rule.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from checker.datatypes import (
    CODE_ADD,
    CODE_CAS,
    CODE_READ,
    CODE_WRITE,
    FAIL,
    REGISTER,
    SET,
    apply,
    compile_op,
    initial_state,
)
from checker.history import Op


@dataclass(slots=True)
class _Step:
    """An operation as the searches see it (``complete`` is NEVER for an optional one)."""

    invoke: float
    complete: float
    required: bool
    code: int
    argument: Any
    process: Any


def searchable(ops: list[Op]) -> list[Op]:
    """The operations the searches place: ok ones, and info updates (optional)."""
    return [op for op in ops if op.status == "ok" or (op.status == "info" and op.is_update)]


def _prepare(ops: list[Op], datatype: str, *, real_time: bool) -> list[_Step]:
    """Compile the operations, and settle the info updates whose fate the reads reveal.

    An info update nobody could have observed (a register value no read or cas saw, a set
    element no read contains) is left out: placing it can only break reads. An info register
    update whose value an ok operation observed, and which is the only writer of that value,
    did take effect: it becomes required, and with real time it completes when the last
    such observer completed (a cas so settled observed its expected value by then, which may
    settle the update that wrote it, and so on).
    """
    live = sorted(searchable(ops), key=lambda op: op.invoke_pos)
    compiled = [compile_op(op, datatype) for op in live]
    steps = [
        _Step(op.invoke_pos, op.complete_pos, op.status == "ok", code, argument, op.process)
        for op, (code, argument) in zip(live, compiled, strict=True)
    ]
    if datatype == REGISTER:
        return _settle_register(steps, real_time=real_time)
    if datatype == SET:
        elements: set[Any] = set()
        for step in steps:
            if step.code == CODE_READ:
                elements |= step.argument
        return [
            step
            for step in steps
            if step.required or step.code != CODE_ADD or step.argument in elements
        ]
    return steps


def _settle_register(steps: list[_Step], *, real_time: bool) -> list[_Step]:
    writers: Counter[Any] = Counter({None: 1})  # the initial null counts as a writer
    observed: set[Any] = set()  # values some read or cas (even an info cas) expected
    observed_until: dict[Any, float] = {}  # value -> last completion of an ok observer
    for step in steps:
        if step.code != CODE_READ:
            writers[_written(step)] += 1
        if step.code in (CODE_READ, CODE_CAS):
            seen = step.argument if step.code == CODE_READ else step.argument[0]
            observed.add(seen)
            if step.required:
                observed_until[seen] = max(observed_until.get(seen, -1), step.complete)
    settling = True
    while settling:
        settling = False
        for step in steps:
            value = None if step.code == CODE_READ else _written(step)
            if step.required or value not in observed_until or writers[value] != 1:
                continue
            step.required = True
            if real_time:
                step.complete = observed_until[value]
            settling = True
            if step.code == CODE_CAS:
                expected = step.argument[0]
                observed_until[expected] = max(observed_until.get(expected, -1), step.complete)
    return [step for step in steps if step.required or _written(step) in observed]


def linearizable(ops: list[Op], datatype: str, limit: int) -> bool | None:
    steps = _prepare(ops, datatype, real_time=True)
    if datatype == REGISTER:
        _merge_unseen_values(steps)
    if not steps:
        return True
    if any(step.complete < step.invoke for step in steps):
        return False  # an info write settled by a read that ended before it began
    return _wing_gong_lowe(steps, datatype, limit)


UNSEEN = object()  # stands for every register value no read or cas ever saw


def _merge_unseen_values(steps: list[_Step]) -> None:
    """Replace the values nobody observed by one symbol.

    No read or cas can tell two such values apart, so states that differ only in which of
    them the register holds lead to the same futures: merging them lets the memo and the
    twin rule treat those writes as one.
    """
    observed = {
        step.argument if step.code == CODE_READ else step.argument[0]
        for step in steps
        if step.code in (CODE_READ, CODE_CAS)
    }
    for step in steps:
        if step.code == CODE_WRITE and step.argument not in observed:
            step.argument = UNSEEN
        elif step.code == CODE_CAS and step.argument[1] not in observed:
            step.argument = (step.argument[0], UNSEEN)


def _twins(steps: list[_Step]) -> list[int]:
    """For each step, the identical step that must be placed before it, or -1.

    Identical operations are interchangeable: when an earlier-invoked twin also completes no
    later, it goes first (an order placing them the other way round works swapped).
    """
    twin = [-1] * len(steps)
    last: dict[tuple[int, Any], int] = {}
    for index, step in enumerate(steps):
        earlier = last.get((step.code, step.argument))
        if earlier is not None and steps[earlier].complete <= step.complete:
            twin[index] = earlier
        last[(step.code, step.argument)] = index
    return twin


def _event_list(
    steps: list[_Step],
) -> tuple[list[int], list[int], list[int], list[bool], list[int]]:
    """The doubly linked list of invokes and returns: next, previous, op, is-call, return.

    Node 0 is the head; node k (1..n) is the k-th event in real-time order; -1 ends it.
    """
    events: list[tuple[float, int, bool]] = []
    for index, step in enumerate(steps):
        events.append((step.invoke, index, True))
        if step.required:
            events.append((step.complete, index, False))
    events.sort()
    size = len(events)
    nxt = [*range(1, size + 1), -1]
    prv = [-1, *range(size)]
    node_op = [-1] + [index for _, index, _ in events]
    is_call = [False] + [call for _, _, call in events]
    match = [-1] * (size + 1)
    call_node = [0] * len(steps)
    for node in range(1, size + 1):
        if is_call[node]:
            call_node[node_op[node]] = node
        else:
            match[call_node[node_op[node]]] = node
    return nxt, prv, node_op, is_call, match


def _wing_gong_lowe(steps: list[_Step], datatype: str, limit: int) -> bool | None:
    codes, arguments, required = zip(
        *((step.code, step.argument, step.required) for step in steps), strict=True
    )
    bits = [1 << index for index in range(len(steps))]
    twin, is_placed = _twins(steps), [False] * len(steps)
    nxt, prv, node_op, is_call, match = _event_list(steps)

    state = initial_state(datatype)
    placed = 0
    remaining = sum(required)
    stack: list[tuple[int, object, bool]] = []
    seen: set[tuple[int, object]] = set()
    node = nxt[0]
    while remaining:
        doomed = False
        if node != -1 and is_call[node]:
            index = node_op[node]
            code = codes[index]
            earlier = twin[index]
            waits = earlier != -1 and not is_placed[earlier]
            after = FAIL if waits else apply(state, code, arguments[index])
            if after is not FAIL:
                config = (placed | bits[index], after)
                if config not in seen:
                    if len(seen) >= limit:
                        return None
                    seen.add(config)
                    stack.append((node, state, code == CODE_READ))
                    state = after
                    placed = config[0]
                    is_placed[index] = True
                    _lift(node, nxt, prv, match)
                    if required[index]:
                        remaining -= 1
                    node = nxt[0]
                    continue
                doomed = code == CODE_READ  # the read's successor failed, so does this one
            if not doomed:
                node = nxt[node]
                continue
        # a return is reached (its operation must come first) or nothing is left to try
        while True:
            if not stack:
                return False
            node, state, forced = stack.pop()
            index = node_op[node]
            placed ^= bits[index]
            is_placed[index] = False
            _unlift(node, nxt, prv, match)
            if required[index]:
                remaining += 1
            if not forced:
                break
        node = nxt[node]
    return True


def _lift(node: int, nxt: list[int], prv: list[int], match: list[int]) -> None:
    before, after = prv[node], nxt[node]
    nxt[before] = after
    if after != -1:
        prv[after] = before
    ret = match[node]
    if ret != -1:
        before, after = prv[ret], nxt[ret]
        nxt[before] = after
        if after != -1:
            prv[after] = before


def _unlift(node: int, nxt: list[int], prv: list[int], match: list[int]) -> None:
    ret = match[node]
    if ret != -1:
        before, after = prv[ret], nxt[ret]
        nxt[before] = ret
        if after != -1:
            prv[after] = ret
    before, after = prv[node], nxt[node]
    nxt[before] = node
    if after != -1:
        prv[after] = node


def sequential(ops: list[Op], datatype: str, limit: int) -> bool | None:
    """Sequential consistency of one key's operations: program order per process only."""
    steps = _prepare(ops, datatype, real_time=False)
    if not steps:
        return True
    if datatype == REGISTER:
        verdict = _sequential_register_blocks(steps)
        if verdict is not None:
            return verdict
    if linearizable(ops, datatype, limit):
        return True  # a linearization is a sequential order too
    if datatype == REGISTER:
        _merge_unseen_values(steps)
    return _sequential_search(steps, datatype, limit)


def _programs(steps: list[_Step]) -> list[list[_Step]]:
    grouped: dict[Any, list[_Step]] = {}
    for step in steps:  # already in invoke order
        grouped.setdefault(step.process, []).append(step)
    return list(grouped.values())


def _written(step: _Step) -> Any:
    return step.argument[1] if step.code == CODE_CAS else step.argument


def _sequential_register_blocks(steps: list[_Step]) -> bool | None:
    """Exact polynomial check for a register whose writes all write distinct non-null values.

    Then every read names its write, so any legal order is a sequence of blocks: a write
    followed by the reads of its value (the initial null's block first). An ok cas reading
    ``e`` and writing ``n`` glues block ``n`` right after block ``e``, so blocks form chains.
    Program order asks, for each process's consecutive operations a then b, that a's block
    comes no later than b's (strictly when b writes; a read of v then the write of v is
    impossible). An order exists iff those constraints between chains have no cycle, agree
    with the order inside each chain, and put nothing before the initial block's chain.
    None when the writes are not distinct (the general search decides then).
    """
    writer_of: dict[Any, _Step] = {}
    for step in steps:
        if step.code != CODE_READ:
            value = _written(step)
            if value is None or value in writer_of:
                return None
            writer_of[value] = step
    # an info update still optional now is one only other optional cas saw: leave it out
    steps = [step for step in steps if step.required]
    written = {value for value, step in writer_of.items() if step.required}
    readable = written | {None}
    if any(step.code == CODE_READ and step.argument not in readable for step in steps):
        return False  # a read of a value nobody wrote
    chains = _chains(steps, written)
    if chains is None:
        return False
    return _program_order_fits(steps, *chains)


def _chains(steps: list[_Step], written: set[Any]) -> tuple[dict[Any, Any], dict[Any, int]] | None:
    """Each block's chain (named by its first block) and rank in it; None if cas conflict.

    The initial null's block is ``None``. Two cas that saw the same write cannot both follow
    it, a cas cannot see a value nobody wrote, and cas that only feed each other have no
    first write: then no order exists.
    """
    following: dict[Any, Any] = {}
    for step in steps:
        if step.code == CODE_CAS:
            expected, new = step.argument
            if (expected is not None and expected not in written) or expected in following:
                return None
            following[expected] = new
    preceded = set(following.values())
    chain_of: dict[Any, Any] = {}
    rank: dict[Any, int] = {}
    for start in [None, *written]:
        if start in preceded:
            continue
        block, position = start, 0
        chain_of[block], rank[block] = start, position
        while block in following:
            block, position = following[block], position + 1
            chain_of[block], rank[block] = start, position
    if len(chain_of) < len(written) + 1:
        return None
    return chain_of, rank


def _program_order_fits(steps: list[_Step], chain_of: dict[Any, Any], rank: dict[Any, int]) -> bool:
    """Whether the chains can be ordered so every process's program order holds."""
    edges: dict[Any, set[Any]] = defaultdict(set)
    first_chain = chain_of[None]
    for program in _programs(steps):
        for earlier, later in itertools.pairwise(program):
            first, second = _block(earlier), _block(later)
            if first == second:
                if earlier.code == CODE_READ and later.code != CODE_READ:
                    return False  # read a value before writing it
                continue
            head, tail = chain_of[first], chain_of[second]
            if head == tail:
                if rank[first] > rank[second]:
                    return False
            elif tail == first_chain:
                return False  # nothing comes before the initial value
            else:
                edges[head].add(tail)
    return _acyclic(edges)


def _block(step: _Step) -> Any:
    return step.argument if step.code == CODE_READ else _written(step)


def _acyclic(edges: dict[Any, set[Any]]) -> bool:
    indegree: Counter[Any] = Counter()
    for targets in list(edges.values()):
        for target in targets:
            indegree[target] += 1
    ready = [node for node in edges if indegree[node] == 0]
    visited = 0
    nodes = set(edges) | set(indegree)
    while ready:
        node = ready.pop()
        visited += 1
        for target in edges.get(node, ()):
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return visited == len(nodes)


def _sequential_search(steps: list[_Step], datatype: str, limit: int) -> bool | None:
    """Interleave the processes' programs, memoising (positions, state) configurations."""
    programs = _programs(steps)
    lengths = [len(program) for program in programs]
    # an info operation is its process's last: the process is done without it
    needed = [len(program) - (not program[-1].required) for program in programs]
    processes = range(len(programs))

    def done(positions: tuple[int, ...]) -> bool:
        return all(positions[p] >= needed[p] for p in processes)

    def by_next_invoke(positions: tuple[int, ...]) -> list[int]:
        # try first the process whose next operation was invoked earliest: histories come
        # from real executions, so real-time order is the likeliest to work
        waiting = [p for p in processes if positions[p] < lengths[p]]
        return sorted(waiting, key=lambda p: programs[p][positions[p]].invoke)

    start = ((0,) * len(programs), initial_state(datatype))
    seen = {start}
    # a frame: [configuration, the processes left to try]; None before the first try
    stack: list[list[Any]] = [[start, None]]
    while stack:
        frame = stack[-1]
        (positions, state), untried = frame
        if done(positions):
            return True
        if untried is None:
            forced = _legal_read(positions, state, programs, lengths)
            if forced is not None:
                frame[1] = []  # no alternatives: the read goes first
                config = (_advance(positions, forced), state)
                if config in seen:
                    stack.pop()
                    continue
                if len(seen) >= limit:
                    return None
                seen.add(config)
                stack.append([config, None])
                continue
            untried = frame[1] = by_next_invoke(positions)[::-1]
        moved = False
        while untried:
            p = untried.pop()
            step = programs[p][positions[p]]
            after = apply(state, step.code, step.argument)
            if after is FAIL:
                continue
            config = (_advance(positions, p), after)
            if config in seen:
                continue
            if len(seen) >= limit:
                return None
            seen.add(config)
            stack.append([config, None])
            moved = True
            break
        if not moved:
            stack.pop()
    return False


def _advance(positions: tuple[int, ...], p: int) -> tuple[int, ...]:
    return (*positions[:p], positions[p] + 1, *positions[p + 1 :])


def _legal_read(
    positions: tuple[int, ...], state: Any, programs: list[list[_Step]], lengths: list[int]
) -> int | None:
    for p, at in enumerate(positions):
        if at < lengths[p]:
            step = programs[p][at]
            if step.code == CODE_READ and step.argument == state:
                return p
    return None
