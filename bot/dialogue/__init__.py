"""The learner dialogue, independent of channels: inbound message in, replies out."""

from bot.dialogue.flow import Dialogue

__all__ = ["Dialogue"]
