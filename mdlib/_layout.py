"""The state vector shared by the ODE and the SDE integrators (private).

Both integrators evolve the same flat vector: the ``p`` overlaps ``m_j``,
then the free entries of ``Q`` in the row-major order of
``numpy.triu_indices`` (the strict upper triangle in projected mode, where
``Q_jj ≡ 1``; the upper triangle with its diagonal otherwise), then the
``p`` second-layer weights ``a_j`` when they are trained.  The increment
variables of App. B (``M_j``, ``𝒬_jl`` for ``j <= l``, ``A_j``) have the
layout of a plain-SGD state of the same width.
"""
from __future__ import annotations

import numpy as np

_KIND_M, _KIND_Q, _KIND_A = 0, 1, 2


class StateLayout:
    """Positions of ``m``, the free entries of ``Q`` and ``a`` in a flat state vector.

    Parameters
    ----------
    p : int
        Width.
    spherical : bool
        Projected SGD: only the off-diagonal ``Q_jl`` (``j < l``) are free.
    train : bool
        The second layer is trained: ``a`` is part of the state.

    Attributes
    ----------
    iu : tuple of ndarray
        Row and column indices of the free entries of ``Q``.
    n : int
        Length of the state vector.
    kind, j, l : ndarray of int64
        For each entry: 0 (``m_j``; ``l = p``), 1 (``Q_jl``) or 2 (``a_j``; ``l = j``),
        and its indices, for the numba kernels.
    """

    def __init__(self, p, spherical, train):
        self.p, self.spherical, self.train = int(p), bool(spherical), bool(train)
        self.iu = np.triu_indices(self.p, 1 if self.spherical else 0)
        self.nq = self.iu[0].size
        self.n = self.p + self.nq + (self.p if self.train else 0)
        ar = np.arange(self.p)
        na = self.p if self.train else 0
        self.kind = np.array([_KIND_M] * self.p + [_KIND_Q] * self.nq + [_KIND_A] * na, dtype=np.int64)
        self.j = np.concatenate([ar, self.iu[0], ar[:na]]).astype(np.int64)
        self.l = np.concatenate([np.full(self.p, self.p), self.iu[1], ar[:na]]).astype(np.int64)

    @classmethod
    def of(cls, problem):
        """The layout of the state of ``problem``."""
        return cls(problem.p, problem.spherical, problem.train_second_layer)

    def pack(self, m, Q, a):
        """Flat vectors, shape ``(..., n)``, from ``m (..., p)``, ``Q (..., p, p)``, ``a (..., p)``."""
        parts = [m, Q[..., self.iu[0], self.iu[1]]]
        if self.train:
            parts.append(a)
        return np.concatenate(parts, axis=-1)

    def unpack(self, y, a_fixed):
        """``(m, Q, a)`` from flat vectors; ``a_fixed`` is used when ``a`` is not in the state."""
        p = self.p
        m = y[..., :p]
        Q = np.zeros(y.shape[:-1] + (p, p))
        Q[..., self.iu[0], self.iu[1]] = y[..., p:p + self.nq]
        Q = Q + np.swapaxes(Q, -1, -2)
        if self.spherical:
            Q[..., np.arange(p), np.arange(p)] = 1.0
        else:
            Q[..., np.arange(p), np.arange(p)] *= 0.5
        a = y[..., p + self.nq:] if self.train else a_fixed
        return m, Q, a

    def labels(self):
        """``("m", j)``, ``("Q", j, l)`` or ``("a", j)`` for each entry."""
        out = []
        for k, j, l in zip(self.kind, self.j, self.l):
            out.append(("m", int(j)) if k == _KIND_M else ("Q", int(j), int(l)) if k == _KIND_Q else ("a", int(j)))
        return out

    def index_of_Q(self):
        """``(p, p)`` int array: the position of ``Q_jl`` (either order) in the vector, -1 if not free."""
        iQ = np.full((self.p, self.p), -1, dtype=np.int64)
        for k, (j, l) in enumerate(zip(*self.iu)):
            iQ[j, l] = iQ[l, j] = self.p + k
        return iQ

    def position_in(self, other):
        """For each entry of this layout, the position of the entry of the same name in ``other``."""
        where = {lab: k for k, lab in enumerate(other.labels())}
        return np.array([where[lab] for lab in self.labels()], dtype=np.int64)
