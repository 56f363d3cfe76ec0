"""Model families: the family interface (base), the registry, checkpoints, and one package per family."""
