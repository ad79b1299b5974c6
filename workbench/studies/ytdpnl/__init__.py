"""The YouTube personalization study (seed 002): schema, generator, analyses, sanity checks, API client."""
