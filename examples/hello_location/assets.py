"""Three small assets: a name list, greetings for them, and a count."""

from supervisor import asset


@asset(group_name="people")
def names():
    """Who to greet."""
    return ["Ada", "Grace", "Linus"]


@asset(group_name="people")
def greetings(names, greeting):
    """One greeting per name, using the `greeting` resource."""
    return [f"{greeting}, {name}!" for name in names]


@asset
def greeting_count(greetings):
    """How many greetings there are."""
    return len(greetings)
