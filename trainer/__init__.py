"""Policy engines and the GRPO/DAPO trainer (planned: issue 5)."""
