"""Dedupe by perceptual hash: the bit-sampling tables (bands), where they are stored
(stores), how a lookup is answered (index), what a near-duplicate means per profile (policy)
and how a deployment moves to a new layout (migrate). Exact repeats (the same bytes) are the
content claims of ``imgdrop.dedupe.exact``.

The package itself imports nothing: callers import the module they use, so a function that needs
only the content claims (the API's image routes) does not load the index at its cold start.
"""

# What the first near-duplicate lookup loads (the API's /similar); a SnapStart function loads
# them into its snapshot instead.
NEAR_DUPLICATE_MODULES = (
    "imgdrop.dedupe.bands",
    "imgdrop.dedupe.index",
    "imgdrop.dedupe.policy",
    "imgdrop.dedupe.stores",
)
