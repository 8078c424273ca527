"""Running an exercise: the composition root, external seats, control, replay and security."""
