"""Policy engines and the GRPO/DAPO trainer: `rlvr.trainer.loop.train(rlvr.trainer.config.load_config(...))`,
or `rlvr train` from the command line (docs/TRAINING.md)."""
