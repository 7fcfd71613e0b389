"""Pure image operations: retouching and passport photos. No Django models in here."""
