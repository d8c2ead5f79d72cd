"""The small core every other layer depends on, with no dependency beyond the standard library: the record types,
the shared vocabulary (outcomes, criteria, ratings, keys), the judge interface, errors, rating scales, credential
scrubbing and the settings helpers. Nothing here imports from the rest of the package."""
