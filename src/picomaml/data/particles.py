"""Personal case particles of Tagalog and Cebuano: the one table every stage uses.

Tagalog and Cebuano mark personal names with their own set of case particles (Schachter
and Otanes, *Tagalog Reference Grammar*, 1972; Wolff, *A Dictionary of Cebuano Visayan*,
1972). Section 4.2 of the paper names them as a surface cue for PER ("particle + token"),
so the particle analysis (report analysis 9) and the particle-masking ablation
(``ablations.particles``) read the lists from here.

======== ================================ ==================================================
language particles                        role
======== ================================ ==================================================
Tagalog  si, ni, kay                      singular personal: topic (si), genitive/agent
                                          (ni), oblique (kay): *si Maria*, *ni Jose*
Tagalog  sina, nina, kina                 plural personal ("X and company"): *sina Ana*
Cebuano  si, ni, kang                     singular personal: topic, genitive, oblique
Cebuano  sila ni                          plural personal (two words): *sila ni Pedro*
======== ================================ ==================================================

A particle of two words (``sila ni``) is matched as a whole and before its own last word
(``ni``), so masking drops or replaces both words. Matching is case-insensitive.
"""

from __future__ import annotations

#: Personal case particles per language (each a space-separated word sequence).
PARTICLES: dict[str, tuple[str, ...]] = {
    "Tagalog": ("si", "ni", "kay", "sina", "nina", "kina"),
    "Cebuano": ("si", "ni", "kang", "sila ni"),
}

#: The language of each zero-shot target dataset.
TARGET_LANGUAGE: dict[str, str] = {
    "tl_trg": "Tagalog",
    "tl_ugnayan": "Tagalog",
    "ceb_gja": "Cebuano",
}


def target_particles(code: str) -> list[str]:
    """The particle list of a target dataset's language (empty for other datasets)."""
    language = TARGET_LANGUAGE.get(code)
    return list(PARTICLES[language]) if language else []
