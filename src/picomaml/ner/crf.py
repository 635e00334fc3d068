"""Linear-chain CRF over word-level emissions (batched, masked, log space).

The maintained CRF packages are stale, so the project carries its own small one. Conventions:

* ``emissions``: float ``[B, T, C]``; ``tags``: long ``[B, T]``; ``mask``: bool ``[B, T]``,
  left-aligned (a ``True`` prefix per row, then ``False`` padding). Values of ``emissions`` and
  ``tags`` at padding are ignored (they may be garbage, ``-100``, even NaN).
* ``transitions[i, j]`` scores tag ``i`` followed by tag ``j`` (from -> to); ``start[j]`` and
  ``end[i]`` score the first and last tag of a sequence.
* A sequence with no valid token (an all-``False`` row) has log-partition 0, log-likelihood 0,
  no decoded tags and all-zero marginals; :meth:`LinearChainCRF.nll` leaves it out of the mean.

Everything is vectorised over the batch; the forward-backward passes loop over time, Viterbi
decoding over about sqrt(T) blocks (:func:`blocked_viterbi`). Optional hard constraints
(e.g. IOB2: ``I-X`` only after ``B-X``/``I-X``) replace the scores of forbidden transitions and
starts with a large negative *finite* value, so gradients stay finite even for a gold sequence
that breaks them. They are off by default, as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Score given to a forbidden transition/start: exp() underflows to 0 in float32, yet the value
#: is finite, so neither the forward pass nor its gradient can produce inf - inf = NaN.
FORBIDDEN_SCORE = -1.0e4


def iob2_constraints(labels: list[str]) -> Tensor:
    """Allowed moves of an IOB2 tag set, as a bool tensor of shape ``[C + 1, C]``.

    Rows ``0..C-1`` are the previous tag, row ``C`` is the virtual start state; columns are the
    next tag. ``I-X`` is allowed only after ``B-X`` or ``I-X`` (so never first); everything else
    is allowed. Any tag may end a sequence, so there is no end row.
    """
    n = len(labels)
    allowed = torch.ones(n + 1, n, dtype=torch.bool)
    for label in labels:
        if label != "O" and not (label.startswith(("B-", "I-")) and len(label) > 2):
            raise ValueError(f"iob2_constraints: label {label!r} is not 'O', 'B-X' or 'I-X'")
    for j, to in enumerate(labels):
        if not to.startswith("I-"):
            continue
        etype = to[2:]
        for i, frm in enumerate(labels):
            allowed[i, j] = frm in (f"B-{etype}", f"I-{etype}")
        allowed[n, j] = False
    return allowed


def _check_mask(emissions: Tensor, mask: Tensor) -> Tensor:
    if emissions.dim() != 3:
        raise ValueError(f"emissions must be [B, T, C], got shape {tuple(emissions.shape)}")
    if mask.shape != emissions.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match emissions {tuple(emissions.shape)}"
        )
    mask = mask.to(device=emissions.device, dtype=torch.bool)
    if mask.shape[1] > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("mask must be left-aligned: a True prefix followed by False padding")
    return mask


def blocked_viterbi(
    emissions: Tensor, mask: Tensor, trans: Tensor, start: Tensor, end: Tensor
) -> tuple[Tensor, Tensor]:
    """Viterbi over ``[B, T, C]`` emissions (left-aligned ``mask``) in O(sqrt T) tensor steps.

    Why: a loop over time costs a handful of tensor operations per word, so a 1 MB line
    (200,000 words) spent most of its time in Python. Max-plus matrix products are
    associative, so the sequence's T - 1 transitions are cut into ``nb`` blocks of ``L``
    (both about sqrt T) and processed in three passes, each a loop of length L or nb
    vectorised over blocks and sentences: (1) every block's max-plus product of its
    transition matrices; (2) the best score entering each block, block after block;
    (3) inside all blocks at once, the ordinary recursion from those scores, keeping the
    backpointers. Backtracking follows the same plan: every block is traced back for each
    possible final tag at once, then the blocks are chained from the last. A padded
    position is the identity (scores carried over, pointers to themselves). Returns paths
    ``[B, T]`` (garbage at padding) and best scores ``[B]``.
    """
    bsz, length, c = emissions.shape
    device = emissions.device
    score = start.unsqueeze(0) + emissions[:, 0]  # [B, C]
    n = length - 1  # transitions
    if n == 0:
        best, last = (score + end.unsqueeze(0)).max(dim=1)
        return last.unsqueeze(1), best
    size = math.isqrt(n - 1) + 1  # L = ceil(sqrt(n))
    nb = -(-n // size)
    pad = nb * size - n
    em = torch.nn.functional.pad(emissions[:, 1:], (0, 0, 0, pad)).view(bsz, nb, size, c)
    valid = torch.nn.functional.pad(mask[:, 1:], (0, pad)).view(bsz, nb, size)
    eye = torch.full((c, c), -math.inf, dtype=emissions.dtype, device=device)
    eye.fill_diagonal_(0.0)
    # (1) product[b, k, i, j]: best score of block k's transitions from tag i to tag j.
    product = eye.expand(bsz, nb, c, c)
    for step in range(size):
        nxt = (product.unsqueeze(-1) + trans).amax(dim=-2) + em[:, :, step].unsqueeze(-2)
        product = torch.where(valid[:, :, step, None, None], nxt, product)
    # (2) the score vector entering each block.
    entering = [score]
    for k in range(nb - 1):
        entering.append((entering[-1].unsqueeze(-1) + product[:, k]).amax(dim=-2))
    score = torch.stack(entering, dim=1)  # [B, nb, C]
    # (3) the recursion inside every block at once.
    identity = torch.arange(c, device=device).expand(bsz, nb, c)
    pointers = []
    for step in range(size):
        best, arg = (score.unsqueeze(-1) + trans).max(dim=-2)
        ok = valid[:, :, step, None]
        score = torch.where(ok, best + em[:, :, step], score)
        pointers.append(torch.where(ok, arg, identity))
    best_score, last = (score[:, -1] + end.unsqueeze(0)).max(dim=1)
    # Trace every block back from each possible tag at its end: traced[b, k, l, j] is the
    # tag at position k * L + l when the tag at position (k + 1) * L is j.
    cur = identity
    traced = []
    for step in reversed(range(size)):
        cur = pointers[step].gather(-1, cur)
        traced.append(cur)
    traced_t = torch.stack(traced[::-1], dim=2)  # [B, nb, L, C]
    ends = []
    tag = last
    for k in reversed(range(nb)):
        ends.append(tag)
        tag = traced_t[:, k, 0].gather(-1, tag.unsqueeze(-1)).squeeze(-1)
    block_end = torch.stack(ends[::-1], dim=1)  # [B, nb]
    index = block_end[:, :, None, None].expand(bsz, nb, size, 1)
    path = traced_t.gather(-1, index).squeeze(-1).reshape(bsz, nb * size)
    return torch.cat([path, last.unsqueeze(1)], dim=1)[:, :length], best_score


class LinearChainCRF(nn.Module):
    """CRF with learned transition, start and end scores; see the module docstring."""

    def __init__(self, num_tags: int, constraints: Tensor | None = None) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start = nn.Parameter(torch.empty(num_tags))
        self.end = nn.Parameter(torch.empty(num_tags))
        # Not saved in the state dict: whether to constrain is a decision of the run config,
        # and it can differ between training and decoding (see set_constraints).
        self.register_buffer("allowed", None, persistent=False)
        self.set_constraints(constraints)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small uniform scores so that no tag sequence is favoured at the start."""
        for p in (self.transitions, self.start, self.end):
            nn.init.uniform_(p, -0.1, 0.1)

    def set_constraints(self, constraints: Tensor | None) -> None:
        """Install (or with ``None`` remove) hard constraints.

        ``constraints`` is bool ``[C, C]`` (allowed transitions) or ``[C + 1, C]`` (plus a last
        row of allowed first tags), as returned by :func:`iob2_constraints`.
        """
        c = self.num_tags
        if constraints is None:
            self.allowed = None
            return
        if constraints.dtype != torch.bool or constraints.shape not in ((c, c), (c + 1, c)):
            raise ValueError(
                f"constraints must be a bool tensor of shape [{c}, {c}] or [{c + 1}, {c}], "
                f"got {constraints.dtype} {tuple(constraints.shape)}"
            )
        if constraints.shape[0] == c:
            constraints = torch.cat([constraints, torch.ones(1, c, dtype=torch.bool)])
        self.allowed = constraints.clone().to(self.transitions.device)

    @property
    def constrained(self) -> bool:
        """Whether hard constraints are active."""
        return self.allowed is not None

    # -- helpers ---------------------------------------------------------------------------

    def _scores(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Effective (transitions, start, end) with constraints applied, in ``dtype``."""
        trans, start, end = self.transitions, self.start, self.end
        if self.allowed is not None:
            allowed = self.allowed.to(trans.device)
            trans = trans.masked_fill(~allowed[:-1], FORBIDDEN_SCORE)
            start = start.masked_fill(~allowed[-1], FORBIDDEN_SCORE)
        return trans.to(dtype), start.to(dtype), end.to(dtype)

    def _prepare(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        mask = _check_mask(emissions, mask)
        if emissions.shape[2] != self.num_tags:
            raise ValueError(
                f"emissions have {emissions.shape[2]} tags, the CRF has {self.num_tags}"
            )
        if emissions.dtype in (torch.float16, torch.bfloat16):
            emissions = emissions.float()
        # Zero the padding so garbage there cannot leak NaN into gradients of real positions.
        emissions = emissions.masked_fill(~mask.unsqueeze(-1), 0.0)
        return emissions, mask

    def _forward_alphas(self, emissions: Tensor, mask: Tensor, keep_all: bool) -> list[Tensor]:
        """Forward variables; ``alpha[t][b, j]`` = log-sum of prefixes ending in tag j at t.

        At padding positions alpha is carried over unchanged, so the last entry holds the value
        at each sequence's last valid token.
        """
        trans, start, _ = self._scores(emissions.dtype)
        alpha = start.unsqueeze(0) + emissions[:, 0]
        alphas = [alpha]
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
            if keep_all:
                alphas.append(alpha)
        if not keep_all:
            alphas = [alpha]
        return alphas

    # -- public API ------------------------------------------------------------------------

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """``log Z`` per sequence, ``[B]``; 0 for an all-padding row."""
        emissions, mask = self._prepare(emissions, mask)
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        _, _, end = self._scores(emissions.dtype)
        alpha = self._forward_alphas(emissions, mask, keep_all=False)[-1]
        log_z = torch.logsumexp(alpha + end.unsqueeze(0), dim=1)
        return torch.where(mask[:, 0], log_z, torch.zeros_like(log_z))

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised score of the given tag sequences, ``[B]`` (0 for all-padding rows)."""
        emissions, mask = self._prepare(emissions, mask)
        if tags.shape != mask.shape:
            raise ValueError(
                f"tags shape {tuple(tags.shape)} does not match mask {tuple(mask.shape)}"
            )
        tags = tags.to(emissions.device).long().masked_fill(~mask, 0)
        if bool(((tags < 0) | (tags >= self.num_tags)).any()):
            raise ValueError(f"tags at valid positions must be in [0, {self.num_tags})")
        bsz, length, _ = emissions.shape
        if length == 0:
            return emissions.new_zeros(bsz)
        trans, start, end = self._scores(emissions.dtype)
        maskf = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # [B, T]
        total = (emit * maskf).sum(1) + start[tags[:, 0]] * maskf[:, 0]
        if length > 1:
            total = total + (trans[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
        lengths = mask.sum(1)
        last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        return total + end[last] * maskf[:, 0]

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """``log p(tags | emissions)`` per sequence, ``[B]``; 0 for an all-padding row."""
        return self.score(emissions, tags, mask) - self.log_partition(emissions, mask)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: str = "mean") -> Tensor:
        """Negative log-likelihood.

        ``reduction``: ``"mean"`` over sequences with at least one token (0 if there is none,
        still attached to the graph), ``"sum"``, or ``"none"`` (``[B]``).
        """
        nll = -self.log_likelihood(emissions, tags, mask)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            n_valid = int(mask.to(torch.bool).any(dim=1).sum())
            return nll.sum() / max(n_valid, 1)
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    @torch.no_grad()
    def viterbi(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Best paths ``[B, T]`` (``-1`` at padding) and their scores ``[B]`` (0 if empty).

        Vectorised over the sequence as well as the batch (:func:`blocked_viterbi`), in
        float64 (float32 on MPS, which has no float64): a sentence of a million words is a
        few thousand tensor operations, not millions.
        """
        emissions, mask = self._prepare(emissions, mask)
        bsz, length, _ = emissions.shape
        if length == 0:
            return emissions.new_zeros(bsz, 0, dtype=torch.long), emissions.new_zeros(bsz)
        work = torch.float32 if emissions.device.type == "mps" else torch.float64
        trans, start, end = self._scores(work)
        paths, best_score = blocked_viterbi(emissions.to(work), mask, trans, start, end)
        paths = paths.masked_fill(~mask, -1)
        best_score = torch.where(mask[:, 0], best_score, torch.zeros_like(best_score))
        return paths, best_score.to(emissions.dtype)

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Viterbi tag ids, one list per sequence with ``mask[b].sum()`` entries."""
        paths, _ = self.viterbi(emissions, mask)
        lengths = mask.sum(1).tolist()
        return [row[:n] for row, n in zip(paths.tolist(), lengths, strict=True)]

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """``p(y_t = j | x)`` via forward-backward, ``[B, T, C]``; zeros at padding."""
        emissions, mask = self._prepare(emissions, mask)
        bsz, length, c = emissions.shape
        if length == 0:
            return emissions.new_zeros(bsz, 0, c)
        trans, _, end = self._scores(emissions.dtype)
        alphas = self._forward_alphas(emissions, mask, keep_all=True)
        end_b = end.unsqueeze(0).expand(bsz, c)
        # beta[t][b, i] = log-sum over suffixes after t given tag i at t (incl. the end score).
        beta = end_b
        betas = [beta]
        for t in range(length - 2, -1, -1):
            nxt = torch.logsumexp(
                trans.unsqueeze(0) + (emissions[:, t + 1] + beta).unsqueeze(1), dim=2
            )
            beta = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end_b)
            betas.append(beta)
        alpha = torch.stack(alphas, dim=1)
        beta = torch.stack(betas[::-1], dim=1)
        # exp(alpha + beta - log Z), normalised over the tags at each position instead: equal in
        # exact arithmetic, but with large scores float32 rounding of log Z made some
        # probabilities exceed 1 (by up to 2e-4); a softmax keeps them in [0, 1].
        probs = torch.softmax(alpha + beta, dim=-1)
        return probs.masked_fill(~mask.unsqueeze(-1), 0.0)


class CRFTagger(nn.Module):
    """Linear emission layer (``d_model -> C``) followed by a :class:`LinearChainCRF`.

    The methods mirror the CRF's but take word features ``[B, T, d_model]`` (the hidden state of
    each word's first subword) instead of emissions.
    """

    def __init__(
        self,
        d_model: int,
        num_tags: int,
        constraints: Tensor | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.emission = nn.Linear(d_model, num_tags)
        self.crf = LinearChainCRF(num_tags, constraints)

    def forward(self, features: Tensor) -> Tensor:
        """Emission scores ``[B, T, C]``."""
        return self.emission(self.dropout(features))

    def log_likelihood(self, features: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """See :meth:`LinearChainCRF.log_likelihood`."""
        return self.crf.log_likelihood(self(features), tags, mask)

    def nll(self, features: Tensor, tags: Tensor, mask: Tensor, reduction: str = "mean") -> Tensor:
        """See :meth:`LinearChainCRF.nll`."""
        return self.crf.nll(self(features), tags, mask, reduction)

    def log_partition(self, features: Tensor, mask: Tensor) -> Tensor:
        """See :meth:`LinearChainCRF.log_partition`."""
        return self.crf.log_partition(self(features), mask)

    def decode(self, features: Tensor, mask: Tensor) -> list[list[int]]:
        """See :meth:`LinearChainCRF.decode`."""
        return self.crf.decode(self(features), mask)

    def marginals(self, features: Tensor, mask: Tensor) -> Tensor:
        """See :meth:`LinearChainCRF.marginals`."""
        return self.crf.marginals(self(features), mask)
