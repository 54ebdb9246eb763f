"""Networks and the SegSort math; importable without the `segsort` application."""
