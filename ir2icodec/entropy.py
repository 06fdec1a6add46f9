"""Lossless coding of stage bits and stage-count maps: adaptive binary contexts + range coding.

The binarizer's bits are far from independent: within a block's (channels, rows, cols) code a
bit tends to repeat its left and upper neighbours in the same channel and the same position in
the previous channel, and a stage's bit is correlated with the same bit of the stage before.
Each bit is coded with the probability of its context, learned while coding (counts start
empty for every chunk, so a chunk needs nothing but the bits of earlier stages).

Bits are coded position by position: position k of every block of the chunk, then k+1. All
context bits of position k (W, N, C: earlier positions of the same block; P: the previous
stage) are known to the decoder by then, so one vectorised step codes a whole position for all
blocks, and the counts are updated after each step. Probabilities come from integer counts by
integer arithmetic and are exact multiples of 2**-PROB_BITS, so encoder and decoder agree on
every platform; the range coder is constriction's (format-spec.md, section 5.2).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import constriction
import numpy as np

PROB_BITS = 15
COUNT_LIMIT = 4096  # halve a context's counts beyond this: later statistics weigh more
PRIOR_WEIGHT = 16
OUTSIDE = 2  # a context bit that does not exist (first row, first column, first stage)

_BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)
# Probabilities are clipped to [2**-PROB_BITS, 1 - 2**-PROB_BITS], so even the likeliest
# decision costs at least this many bits: a payload far shorter than that for the decisions
# it must hold cannot have come from an encoder (format-spec.md, section 5.2).
MIN_BITS_PER_DECISION = -math.log2(1 - 2.0**-PROB_BITS)


def min_payload_words(decisions: int) -> int:
    """A lower bound on the 32-bit words of a range-coded payload of ``decisions`` binary
    decisions: half their least possible information content, and at least one word when
    there is anything to code (the coder always emits a word then; zero decisions, zero)."""
    if decisions <= 0:
        return 0
    return max(1, int(decisions * MIN_BITS_PER_DECISION / 2 / 32))


class EntropyError(ValueError):
    """The coded data does not decode (only possible for damaged or forged data)."""


@dataclass(frozen=True)
class CodeLayout:
    """A block's code bits as a (channels, rows, cols) array, flattened in C order."""

    channels: int
    rows: int
    cols: int

    @property
    def bits(self) -> int:
        return self.channels * self.rows * self.cols

    @classmethod
    def for_block(cls, block_size: int, bits_per_stage: int) -> CodeLayout:
        """The layout format version 2 assumes: three stride-2 steps, so the code map is
        block_size/8 on a side and the channels make up the rest."""
        side = block_size // 8
        if side < 1 or bits_per_stage % (side * side):
            raise ValueError(f"{bits_per_stage} bits do not form a code map of side {side}")
        return cls(bits_per_stage // (side * side), side, side)


def _quantise(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator/denominator as an exact multiple of 2**-PROB_BITS in (0, 1), by integer
    arithmetic only: the same on every machine."""
    scale = 1 << PROB_BITS
    k = numerator * scale
    k //= denominator
    # ufuncs in place rather than np.clip (a Python wrapper: this runs per code position);
    # times a power of two is exact, as the division by it was
    np.maximum(k, 1, out=k)
    np.minimum(k, scale - 1, out=k)
    return k * _PROB_STEP


_PROB_STEP = 1.0 / (1 << PROB_BITS)


class _Counts:
    """Adaptive counts of zeros and ones per context (the stage-count map's model)."""

    def __init__(self, n_contexts: int):
        self.zeros = np.zeros(n_contexts, np.int64)
        self.ones = np.zeros(n_contexts, np.int64)

    def probabilities(self, ctx: np.ndarray) -> np.ndarray:
        """P(bit = 1) of each context (Krichevsky-Trofimov estimate)."""
        ones, total = self.ones[ctx], self.zeros[ctx] + self.ones[ctx]
        return _quantise(2 * ones + 1, 2 * total + 2)

    def update(self, ctx: np.ndarray, bits: np.ndarray) -> None:
        n = len(self.ones)
        self.ones += np.bincount(ctx, weights=bits, minlength=n).astype(np.int64)
        self.zeros += np.bincount(ctx, weights=1 - bits, minlength=n).astype(np.int64)
        big = self.zeros + self.ones > COUNT_LIMIT
        if big.any():
            self.zeros[big] = (self.zeros[big] + 1) // 2
            self.ones[big] = (self.ones[big] + 1) // 2


_COARSE = 3**4  # (W, N, C, P)


class _StageModel:
    """The stage bits' model: fine contexts (channel, W, N, C, P) that start from a coarse
    one's (W, N, C, P) estimate: a fine context's first bits are coded with the coarse
    probability (worth PRIOR_WEIGHT observations), so splitting the statistics by channel
    costs little while a context is still new.

    A code position belongs to one channel, so each step needs that channel's 81 fine
    contexts only: their probabilities are computed as one table and looked up per block,
    and one bincount of (context, bit) updates both levels (format-spec.md, section 5.2,
    gives the arithmetic)."""

    def __init__(self, channels: int):
        self.fine_zeros = np.zeros((channels, _COARSE), np.int64)
        self.fine_ones = np.zeros((channels, _COARSE), np.int64)
        self.coarse_zeros = np.zeros(_COARSE, np.int64)
        self.coarse_ones = np.zeros(_COARSE, np.int64)

    def probabilities(self, channel: int, coarse: np.ndarray) -> np.ndarray:
        """P(bit = 1) of each block's bit at a position of ``channel``."""
        f1, f0 = self.fine_ones[channel], self.fine_zeros[channel]
        c1 = self.coarse_ones
        norm = 2 * (c1 + self.coarse_zeros) + 2  # the coarse KT estimate is (2*c1 + 1) / norm
        table = _quantise(f1 * norm + PRIOR_WEIGHT * (2 * c1 + 1), (f1 + f0 + PRIOR_WEIGHT) * norm)
        return table[coarse]

    def update(self, channel: int, coarse: np.ndarray, bits: np.ndarray) -> None:
        seen = np.bincount(coarse + _COARSE * bits, minlength=2 * _COARSE).reshape(2, _COARSE)
        self.fine_zeros[channel] += seen[0]
        self.fine_ones[channel] += seen[1]
        self.coarse_zeros += seen[0]
        self.coarse_ones += seen[1]
        # Every context is checked, not only those just counted: one halving may leave a
        # context above the limit (a chunk of more blocks than the limit), and it is halved
        # again at the next step, whichever channel that step is in.
        for zeros, ones in (
            (self.fine_zeros, self.fine_ones),
            (self.coarse_zeros, self.coarse_ones),
        ):
            big = zeros + ones > COUNT_LIMIT
            if big.any():
                zeros[big] = (zeros[big] + 1) // 2
                ones[big] = (ones[big] + 1) // 2


# Format version 3: learned starting counts. Counts are kept in units of 1/COUNT_SCALE of an
# observation, so a learned prior can be finer than whole observations while every number
# stays an integer.
COUNT_SCALE = 16


@dataclass(frozen=True)
class BitTables:
    """A model's learned starting counts for the stage bits' fine contexts (format version 3):
    ``zeros`` and ``ones``, (stages, channels * 81) int64 each, in units of 1/COUNT_SCALE of
    an observation, counted on training photos' codes (``training.bit_tables``)."""

    zeros: np.ndarray
    ones: np.ndarray

    def for_stage(self, stage: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of stage ``stage``'s (1-based) starting counts (ValueError for a stage the
        tables do not have: the decoder reports it as data that does not decode)."""
        if not 1 <= stage <= len(self.zeros):
            raise ValueError(f"the bit tables have no stage {stage}")
        return self.zeros[stage - 1].copy(), self.ones[stage - 1].copy()


class _LearnedStageModel:
    """Version 3's model of one stage: fine contexts (channel, W, N, C, P) only, each starting
    from the model's learned counts and adapting as the chunk is coded (the same KT estimate
    and halving as version 2, on counts scaled by COUNT_SCALE)."""

    def __init__(self, channels: int, zeros: np.ndarray, ones: np.ndarray):
        self.zeros = zeros.reshape(channels, _COARSE)
        self.ones = ones.reshape(channels, _COARSE)
        # Per channel, a bound on its contexts' largest count (zeros + ones): an update adds
        # COUNT_SCALE per block at most, so while the bound stays within the limit no
        # context can need halving and the check is skipped (it runs per code position).
        self._bound = (self.zeros + self.ones).max(axis=1).tolist()

    def probabilities(self, channel: int, coarse: np.ndarray) -> np.ndarray:
        ones = self.ones[channel]
        half = COUNT_SCALE // 2  # KT's half observation, scaled
        # (2 ones + 2 half) / (2 (ones + zeros) + 4 half), both halved: the same quotient
        table = _quantise(ones + half, ones + self.zeros[channel] + 2 * half)
        return table[coarse]

    def update(self, channel: int, coarse: np.ndarray, bits: np.ndarray) -> None:
        seen = np.bincount(coarse + _COARSE * bits, minlength=2 * _COARSE)
        zeros, ones = self.zeros[channel], self.ones[channel]
        zeros += COUNT_SCALE * seen[:_COARSE]
        ones += COUNT_SCALE * seen[_COARSE:]
        self._bound[channel] += COUNT_SCALE * len(bits)
        if self._bound[channel] <= COUNT_LIMIT * COUNT_SCALE:
            return
        totals = zeros + ones
        big = totals > COUNT_LIMIT * COUNT_SCALE
        if big.any():
            zeros[big] = (zeros[big] + 1) // 2
            ones[big] = (ones[big] + 1) // 2
            totals = zeros + ones
        self._bound[channel] = int(totals.max())


@functools.lru_cache(maxsize=4)
def _context_plan(layout: CodeLayout) -> tuple[tuple[tuple[int, int, int, int], ...], np.ndarray]:
    """What a stage's coder needs to know about each position k, computed once per layout:
    (channel, west, north, before), the positions of its W, N and C neighbours (-1 where
    that neighbour does not exist), and (bits,) uint8 the constant part of its coarse
    context: OUTSIDE in the digits of the neighbours that do not exist."""
    plane = layout.rows * layout.cols
    steps, outside = [], np.zeros(layout.bits, np.uint8)
    for k in range(layout.bits):
        c, rest = divmod(k, plane)
        y, x = divmod(rest, layout.cols)
        west, north, before = (
            (k - 1 if x else -1),
            (k - layout.cols if y else -1),
            (k - plane if c else -1),
        )
        outside[k] = sum(
            OUTSIDE * weight
            for weight, neighbour in ((_WEST, west), (_NORTH, north), (_BEFORE, before))
            if neighbour < 0
        )
        steps.append((c, west, north, before))
    outside.setflags(write=False)  # cached: shared by every call
    return tuple(steps), outside


# the digits of the coarse context ((W * 3 + N) * 3 + C) * 3 + P
_WEST, _NORTH, _BEFORE = 27, 9, 3


def _context_base(layout: CodeLayout, previous: np.ndarray | None, blocks: int) -> np.ndarray:
    """(bits, blocks) uint8: every position's coarse context before its W, N and C bits are
    known: the previous stage's bit (P; OUTSIDE without one) and OUTSIDE's digits. All in
    uint8: the largest context, 80, fits."""
    _, outside = _context_plan(layout)
    if previous is None:
        return np.repeat((outside + OUTSIDE)[:, None], blocks, axis=1)
    return previous.astype(np.uint8) + outside[:, None]


def _coarse_context(
    step: tuple[int, int, int, int], rows: np.ndarray, base: np.ndarray
) -> tuple[int, np.ndarray]:
    """The channel of a position and every block's coarse context there: (W, N, C, P), each
    in {0, 1, OUTSIDE}, as ((W * 3 + N) * 3 + C) * 3 + P. ``step`` is the position's
    ``_context_plan`` entry, ``base`` its row of ``_context_base``; ``rows`` (positions,
    blocks) holds the bits of the positions before it (later ones are not read)."""
    channel, west, north, before = step
    context = base
    # the neighbours that exist add their bit's digit
    if west >= 0:
        context = context + rows[west] * _WEST
    if north >= 0:
        context = context + rows[north] * _NORTH
    if before >= 0:
        context = context + rows[before] * _BEFORE
    return channel, context


def _position_context(
    layout: CodeLayout, codes: np.ndarray, previous: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fine (channel, W, N, C, P) and coarse context indices of position ``k`` for every
    block of (blocks, bits) ``codes`` (what ``training.rate`` reproduces)."""
    rows = _positions_first(codes)
    base = _context_base(layout, _positions_first(previous), rows.shape[1])
    c, coarse = _coarse_context(_context_plan(layout)[0][k], rows, base[k])
    coarse = coarse.astype(np.int64)
    return c * _COARSE + coarse, coarse


CodePosition = Callable[[int, np.ndarray], np.ndarray]  # (k, P(1) per block) -> bits


def _stage_model(
    layout: CodeLayout, tables: BitTables | None, stage: int
) -> _StageModel | _LearnedStageModel:
    """A fresh model for one stage: version 2's (counts from zero) without ``tables``,
    version 3's (the learned counts of ``stage``) with them."""
    if tables is None:
        return _StageModel(layout.channels)
    return _LearnedStageModel(layout.channels, *tables.for_stage(stage))


def _code_stage(
    layout: CodeLayout,
    rows: np.ndarray,
    previous: np.ndarray | None,
    code: CodePosition,
    model: _StageModel | _LearnedStageModel,
) -> None:
    """Position by position, the probabilities of every block's bit, handed to ``code``,
    which returns the bits (what the encoder had, or what the decoder found); ``rows``
    (positions, blocks) uint8 receives them."""
    base = _context_base(layout, previous, rows.shape[1])
    steps, _ = _context_plan(layout)
    for k in range(layout.bits):
        channel, coarse = _coarse_context(steps[k], rows, base[k])
        rows[k] = code(k, model.probabilities(channel, coarse))
        model.update(channel, coarse, rows[k])


def _positions_first(bits: np.ndarray | None) -> np.ndarray | None:
    """(blocks, bits) 0/1 -> (bits, blocks) uint8: each position's bits contiguous."""
    return None if bits is None else np.ascontiguousarray(np.asarray(bits, np.uint8).T)


def encode_stage_bits(
    stages: list[np.ndarray],
    previous: np.ndarray | None,
    layout: CodeLayout,
    *,
    first_stage: int = 1,
    tables: BitTables | None = None,
) -> bytes:
    """Range-code consecutive stages of the same blocks, each (blocks, layout.bits) of 0/1,
    into one stream; ``previous`` holds those blocks' bits of the stage before the first
    (None when the first is stage 1), ``first_stage`` the first one's number. Without
    ``tables`` the model is version 2's, with them version 3's. Returns big-endian 32-bit
    words."""
    encoder = constriction.stream.queue.RangeEncoder()
    prev = _positions_first(previous)
    for number, stage in enumerate(stages, first_stage):
        bits = _positions_first(stage)

        def code(k: int, p_one: np.ndarray, bits=bits) -> np.ndarray:
            encoder.encode(bits[k].astype(np.int32), _BERNOULLI, p_one)
            return bits[k]

        _code_stage(layout, bits.copy(), prev, code, _stage_model(layout, tables, number))
        prev = bits
    return encoder.get_compressed().astype(">u4").tobytes()


def stage_bit_costs(
    stages: list[np.ndarray],
    previous: np.ndarray | None,
    layout: CodeLayout,
    *,
    first_stage: int = 1,
    tables: BitTables | None = None,
) -> list[np.ndarray]:
    """What ``encode_stage_bits`` would spend on each block: for each of ``stages`` (coded
    as one chunk of all these blocks), the ideal code length in bits of every block's bits
    under the adaptive model, (blocks,) float64 each. Rate control weighs stages by these
    instead of a flat ``layout.bits`` per stage."""
    prev = _positions_first(previous)
    costs = []
    for number, stage in enumerate(stages, first_stage):
        bits = _positions_first(stage)
        cost = np.zeros(bits.shape[1])

        def code(k: int, p_one: np.ndarray, bits=bits, cost=cost) -> np.ndarray:
            cost -= np.log2(np.where(bits[k] == 1, p_one, 1.0 - p_one))
            return bits[k]

        _code_stage(layout, bits.copy(), prev, code, _stage_model(layout, tables, number))
        costs.append(cost)
        prev = bits
    return costs


def decode_stage_bits(
    data: bytes | memoryview,
    count: int,
    blocks: int,
    previous: np.ndarray | None,
    layout: CodeLayout,
    *,
    first_stage: int = 1,
    tables: BitTables | None = None,
) -> list[np.ndarray]:
    """Inverse of ``encode_stage_bits`` for ``count`` stages: (blocks, layout.bits) uint8 each."""
    words = _words(data)
    if len(words) < min_payload_words(count * blocks * layout.bits):
        raise EntropyError(
            f"{len(words)} words cannot hold the {count * blocks * layout.bits} "
            f"coded bits of {blocks} blocks (at least "
            f"{min_payload_words(count * blocks * layout.bits)})"
        )
    prev = _positions_first(previous)
    stages = []
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)

        def code(k: int, p_one: np.ndarray) -> np.ndarray:
            return decoder.decode(_BERNOULLI, p_one)

        for number in range(first_stage, first_stage + count):
            rows = np.zeros((layout.bits, blocks), np.uint8)
            _code_stage(layout, rows, prev, code, _stage_model(layout, tables, number))
            stages.append(np.ascontiguousarray(rows.T))
            prev = rows
    except (ValueError, RuntimeError, AssertionError) as e:
        raise EntropyError(f"the coded stage bits do not decode ({e})") from e
    _check_consumed(decoder)
    return stages


# ----------------------------------------------------------------- stage-count map


def _map_levels(stages: int) -> range:
    """Binary decisions of a block's count n in 2..stages: "n >= level" for level 3..stages,
    each asked only of blocks that passed the level below (a unary code)."""
    return range(3, stages + 1)


def _map_context(level: int, top_ge: np.ndarray) -> np.ndarray:
    # (level, whether the block above reached this level: 0, 1 or OUTSIDE)
    return (level - 3) * 3 + top_ge


def encode_stage_map(counts_map: np.ndarray, stages: int) -> bytes:
    """Range-code a (blocks_y, blocks_x) map of per-block stage counts in 2..stages."""
    n = np.asarray(counts_map, np.int64)
    model = _Counts(max(1, (stages - 2) * 3))
    encoder = constriction.stream.queue.RangeEncoder()
    for level in _map_levels(stages):
        for row in range(n.shape[0]):
            asked = n[row] >= level - 1
            if not asked.any():
                continue
            top = n[row - 1] >= level if row else None
            top_ge = np.full(n.shape[1], OUTSIDE, np.int64) if top is None else top.astype(np.int64)
            ctx = _map_context(level, top_ge[asked])
            decision = (n[row][asked] >= level).astype(np.int64)
            encoder.encode(decision.astype(np.int32), _BERNOULLI, model.probabilities(ctx))
            model.update(ctx, decision)
    return encoder.get_compressed().astype(">u4").tobytes()


def decode_stage_map(
    data: bytes | memoryview, blocks_y: int, blocks_x: int, stages: int
) -> np.ndarray:
    """Inverse of ``encode_stage_map``: (blocks_y, blocks_x) uint8 counts in 2..stages."""
    words = _words(data)
    asked = blocks_y * blocks_x if stages > 2 else 0  # level 3 is asked of every block
    if len(words) < min_payload_words(asked):
        raise EntropyError(
            f"{len(words)} words cannot hold the stage counts of {blocks_y * blocks_x} blocks"
        )
    n = np.full((blocks_y, blocks_x), 2, np.int64)
    model = _Counts(max(1, (stages - 2) * 3))
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        for level in _map_levels(stages):
            for row in range(blocks_y):
                asked = n[row] >= level - 1
                if not asked.any():
                    continue
                top_ge = (
                    (n[row - 1] >= level).astype(np.int64)
                    if row
                    else np.full(blocks_x, OUTSIDE, np.int64)
                )
                ctx = _map_context(level, top_ge[asked])
                decision = decoder.decode(_BERNOULLI, model.probabilities(ctx)).astype(np.int64)
                n[row, asked] += decision
                model.update(ctx, decision)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise EntropyError(f"the stage map does not decode ({e})") from e
    _check_consumed(decoder)
    return n.astype(np.uint8)


def _words(data: bytes | memoryview) -> np.ndarray:
    if len(data) % 4:
        raise EntropyError(f"range-coded data is {len(data)} bytes, not whole 32-bit words")
    return np.frombuffer(bytes(data), ">u4").astype(np.uint32)


def _check_consumed(decoder) -> None:
    # A writer emits exactly the words the coder needs; words the decoder can tell are
    # surplus (constriction checks conservatively) mean forged data.
    if not decoder.maybe_exhausted():
        raise EntropyError("range-coded data has bytes after its last symbol")
