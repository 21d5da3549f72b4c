"""A plugin whose card leaves out a role that one of its hooks returns it for (`segmentkit plugins --check`)."""

import segmentkit as sk

CARD = sk.ModelCard(id="badcard-colour", family="badcard", roles=("prompter",), tasks=("prompt", "track"),
                    prompt_kinds=("point",), license="MIT", runtimes=("numpy",))


@sk.hookimpl
def segmentkit_prompters():
    return [sk.ModelSpec(card=CARD, role="prompter", loader="skbadcard:Colour")]


@sk.hookimpl
def segmentkit_trackers():  # the card says prompter only: building this spec raises
    return [sk.ModelSpec(card=CARD, role="tracker", loader="skbadcard:Colour")]
