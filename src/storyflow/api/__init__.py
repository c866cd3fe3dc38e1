"""The jobs API: its routes (a Powertools `Router`), their logic and data access, and the error handlers
every HTTP function of the stack shares, so every refusal has one shape: `{message, field}`."""
