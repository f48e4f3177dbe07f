"""Training loop pieces shared by every trainable model: batches, optimisers, schedules,
checkpoints, history and plots. The gradient itself comes from the model (EventProp)."""
