"""Models built in the lessons and reused by later ones (each tested to match its lesson)."""
