"""ALFWorld on the real engine: scenes, PDDL, generated games, the expert and its trajectories."""
