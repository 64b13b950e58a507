"""Graph -> Python source -> framework model, and eager runs of that model."""
