"""recommendations' public contract. It publishes no events: it only learns from others'."""
