"""Compare runs: a leaderboard over run dirs (or W&B runs) with seeds, intervals and paired significance."""
