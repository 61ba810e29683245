"""Groups of voices being merged into speakers, kept incrementally (``speakers.cluster``'s last steps).

Pure numpy. After the average-linkage tree has cut the voices into groups, groups with too little speech join
their nearest group, and, when the user gave the count, the most alike groups become one until the count is
left. Both compare centroids after every merge; :class:`VoiceGroups` keeps what they need so that a merge
touches one row and column instead of every group.
"""

from __future__ import annotations

import numpy as np


class VoiceGroups:
    """Groups of voices being merged, kept incrementally: each group's vector sum (its centroid, normalised), its
    seconds of speech, and the dot products of every two sums (``_gram``), from which any two centroids'
    similarity is one division. A merge adds one row and column of that table to another's, so absorbing k
    small groups costs O(k²) in all after one O(k²·dim) product, where recomputing every centroid after each
    merge cost O(k·n·dim) per merge (2,000 voices unlike each other took most of a minute)."""

    def __init__(self, vectors: np.ndarray, seconds: np.ndarray, labels: np.ndarray):
        keys, self._of = np.unique(labels, return_inverse=True)
        k = len(keys)
        self._sums = np.zeros((k, vectors.shape[1]))
        np.add.at(self._sums, self._of, vectors)
        self._speech = np.bincount(self._of, weights=seconds, minlength=k).astype(float)
        self._gram = self._sums @ self._sums.T
        self._alive = np.ones(k, dtype=bool)
        self._into = np.arange(k)  # where each group went (itself while alive)

    @property
    def count(self) -> int:
        return int(self._alive.sum())

    def _norms(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self._gram), 1e-24))

    def _alike(self, k: int, norms: np.ndarray) -> np.ndarray:
        """Cosine similarity of group ``k``'s centroid with every group's; -inf for itself and merged ones."""
        row = self._gram[k] / (norms * norms[k])
        row[~self._alive] = -np.inf
        row[k] = -np.inf
        return row

    def _merge(self, small: int, into: int) -> None:
        self._sums[into] += self._sums[small]
        self._speech[into] += self._speech[small]
        self._gram[into, :] += self._gram[small, :]  # row first, then column: the corner gets both cross terms
        self._gram[:, into] += self._gram[:, small]
        self._alive[small] = False
        self._into[small] = into

    def absorb_small(self, min_speech_s: float, keep: int) -> None:
        """Groups with less than ``min_speech_s`` of speech join their nearest group (by centroid), smallest
        first, while more than ``keep`` groups are left."""
        while self.count > keep:
            small = int(np.argmin(np.where(self._alive, self._speech, np.inf)))
            if self._speech[small] >= min_speech_s:
                return
            self._merge(small, int(np.argmax(self._alike(small, self._norms()))))

    def join_closest(self, count: int) -> None:
        """The two groups whose centroids are most alike become one, until ``count`` are left. Each group's most
        alike other is cached; a merge recomputes only the rows it can have changed."""
        if self.count <= count:
            return
        norms = self._norms()
        k = len(self._alive)
        best = np.full(k, -np.inf)
        other = np.zeros(k, dtype=int)
        for i in np.flatnonzero(self._alive):
            row = self._alike(int(i), norms)
            other[i] = int(np.argmax(row))
            best[i] = row[other[i]]
        while self.count > count:
            a = int(np.argmax(best))
            a, b = min(a, int(other[a])), max(a, int(other[a]))
            self._merge(b, a)
            best[b] = -np.inf
            norms[a] = np.sqrt(max(float(self._gram[a, a]), 1e-24))
            row = self._alike(a, norms)
            other[a] = int(np.argmax(row))
            best[a] = row[other[a]]
            lost = self._alive & ((other == a) | (other == b))
            lost[a] = False
            nearer = self._alive & ~lost & (row > best)  # row[a] is -inf: a itself is never nearer
            other[nearer], best[nearer] = a, row[nearer]
            for i in np.flatnonzero(lost):  # its nearest changed or went: look again
                again = self._alike(int(i), norms)
                other[i] = int(np.argmax(again))
                best[i] = again[other[i]]

    def labels(self) -> np.ndarray:
        """Each voice's group, numbered 0, 1, … in the order of the groups' first labels."""
        root = self._into.copy()
        while True:  # follow merges to the group that took each one
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        kept = np.flatnonzero(self._alive)
        return np.searchsorted(kept, root[self._of])

    def centroids(self) -> np.ndarray:
        """The centroids of the groups left, in label order."""
        sums = self._sums[self._alive]
        return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
