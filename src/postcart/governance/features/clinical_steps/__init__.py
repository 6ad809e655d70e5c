"""The clinical step library: Given/When/Then phrases as a hematologist says them, one module per area."""
