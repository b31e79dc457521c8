"""The training harness shared by every stage: `harness.fit` (the one loop), `checkpoint` (the one format),
`launch.train` (in-process or on Ray Train workers)."""
