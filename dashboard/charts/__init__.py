"""Pure functions: plain data in, a Plotly figure dict out.  No ORM, no requests."""
