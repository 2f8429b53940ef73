"""String similarity for matching: Jaro-Winkler, written for speed in plain Python.

Matching measures the similarity of many names and streets; each search for a
matching character in the other string is one ``str.find`` within the window
rather than a Python loop over it. The result is the textbook Jaro-Winkler, equal
to the last bit to the plain formulation (the tests compare the two).
"""

from __future__ import annotations

__all__ = ("jaro_winkler",)


def jaro_winkler(a: str, b: str, *, prefix_scale: float = 0.1) -> float:
    """The Jaro-Winkler similarity of two strings, from 0 (nothing shared) to 1 (equal)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    len_a, len_b = len(a), len(b)
    window = max(max(len_a, len_b) // 2 - 1, 0)
    matched = [False] * len_b
    a_matches: list[str] = []
    find = b.find
    for i, char in enumerate(a):
        end = i + window + 1
        # The first unmatched equal character of ``b`` within the window.
        j = find(char, i - window if i > window else 0, end)
        while j >= 0 and matched[j]:
            j = find(char, j + 1, end)
        if j >= 0:
            matched[j] = True
            a_matches.append(char)
    n = len(a_matches)
    if not n:
        return 0.0
    transposed, k = 0, 0
    for j, hit in enumerate(matched):
        if hit:
            transposed += b[j] != a_matches[k]
            k += 1
    jaro = (n / len_a + n / len_b + (n - transposed / 2) / n) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1 - jaro)
