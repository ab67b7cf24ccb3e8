"""The chat visitor's side: visitor tokens and the visitor's read of its conversation."""
