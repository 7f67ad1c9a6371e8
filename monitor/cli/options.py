"""How an option is declared: once, with its flags, its MONITOR_ variable and, for a
setting, the Settings field it sets (the shared ones are in monitor/cli/settings.py).

An option bound to a Settings field takes its default from `Settings`, and its
value lands on the Settings object the command is given (`settings_from`): no
map from options to settings is kept by hand.

A command offers the settings options that mean something to it (its --help
lists them) and accepts the rest of their family hidden, so that one
environment shared by every service (docker-compose.yml) and older command
lines keep working.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import click

from monitor.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

DEFAULTS = Settings()


class SettingOption(click.Option):
    """A click option whose value is the Settings field `setting`."""

    def __init__(self, *args: Any, setting: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting = setting


@dataclass(frozen=True, eq=False)
class Option:
    """An option as declared; used as a decorator, it adds itself to a command."""

    decls: tuple[str, ...]
    envvar: str
    help: str
    setting: str | None = None
    click_args: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, command: F) -> F:
        return self.attach(command)

    def attach(self, command: F, *, hidden: bool = False) -> F:
        arguments: dict[str, Any] = {"show_envvar": True, "show_default": True}
        if self.setting is not None:
            arguments.update(
                cls=SettingOption, setting=self.setting, default=getattr(DEFAULTS, self.setting)
            )
        arguments.update(self.click_args)
        arguments["hidden"] = hidden or arguments.get("hidden", False)
        return click.option(*self.decls, envvar=self.envvar, help=self.help, **arguments)(command)


def option(
    *decls: str, env: str, help: str, setting: str | None = None, **click_args: Any
) -> Option:
    """Declare an option: click's own arguments, plus its variable and maybe its setting."""
    if not env.startswith("MONITOR_"):
        raise ValueError(f"{decls[0]}: its variable {env} must start with MONITOR_")
    return Option(decls, env, help, setting, click_args)


def settings_from(context: click.Context) -> Settings:
    """The command's Settings: the defaults, with the value of each settings option it has."""
    values = {
        param.setting: context.params[param.name]
        for param in context.command.params
        if isinstance(param, SettingOption) and param.name in context.params
    }
    return replace(Settings(), **values)


def settings_options(
    *offered: Option, accepts: Iterable[Option] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command `offered` (shown in --help) and `accepts` (hidden); it receives
    their values as its first argument, one Settings object, instead of one by one."""
    hidden = [declared for declared in accepts if all(declared is not o for o in offered)]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def with_settings(**params: Any) -> None:
            context = click.get_current_context()
            settings = settings_from(context)
            for param in context.command.params:
                if isinstance(param, SettingOption):
                    params.pop(param.name or "", None)
            command(settings, **params)

        # click lists options in the reverse order of their decorators.
        for declared in reversed(hidden):
            with_settings = declared.attach(with_settings, hidden=True)
        for declared in reversed(offered):
            with_settings = declared.attach(with_settings)
        return with_settings

    return decorate
