"""Settlement helpers shared by the flexibility and market areas."""
