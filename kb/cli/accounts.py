"""`kb user …`, `kb token …` and `kb group …`: the accounts file of team access, edited on the machine
itself."""

from __future__ import annotations

import argparse
import getpass
import sys

from kb.cli.common import EXIT_OK, fail, settings_from
from kb.service.auth import ROLES, Accounts, AuthError


def _accounts(args: argparse.Namespace) -> Accounts:
    return Accounts(settings_from(args).accounts_path)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        raise AuthError("the two passwords differ")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        if args.action == "list":
            for u in accounts.users():
                print(f"{u['name']}\t{u['role']}\t{u['created']}")
        elif args.action == "add":
            if any(u["name"] == args.name for u in accounts.users()):
                raise AuthError(f"user {args.name!r} exists (use `kb user passwd` or `kb user role`)")
            accounts.set_user(args.name, _password(args), args.role)
            print(f"added {args.name} ({args.role}) to {accounts.path}")
        elif args.action == "passwd":
            if not any(u["name"] == args.name for u in accounts.users()):
                raise AuthError(f"no user {args.name!r}")
            accounts.set_user(args.name, _password(args))
            print(f"password of {args.name} changed")
        elif args.action == "role":
            accounts.set_role(args.name, args.role)
            print(f"{args.name} is now {args.role}")
        elif args.action == "remove":
            accounts.remove_user(args.name)
            print(f"removed {args.name}")
    except AuthError as err:
        return fail(str(err))
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        if args.action == "list":
            for t in accounts.tokens():
                print(f"{t['id']}\t{t['name']}\t{t['role']}\t{t['created']}")
        elif args.action == "create":
            token = accounts.create_token(args.name, args.role)
            print(token)
            print(
                "(shown once; send it as `Authorization: Bearer …`, or set KB_API_TOKEN for the CLI)",
                file=sys.stderr,
            )
        elif args.action == "revoke":
            accounts.revoke_token(args.id)
            print(f"revoked {args.id}")
    except AuthError as err:
        return fail(str(err))
    return EXIT_OK


def cmd_group(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        if args.action == "list":
            for g in accounts.groups():
                print(f"{g['name']}\t{', '.join(g['members'])}")
        elif args.action == "add":
            accounts.add_to_group(args.group, args.members)
            members = next(g["members"] for g in accounts.groups() if g["name"] == args.group)
            print(f"{args.group}: {', '.join(members)}")
        elif args.action == "remove":
            accounts.remove_from_group(args.group, args.members or None)
            print(
                f"removed {', '.join(args.members)} from {args.group}"
                if args.members
                else f"removed {args.group}"
            )
    except AuthError as err:
        return fail(str(err))
    return EXIT_OK


def register_cli(sub) -> None:
    user = sub.add_parser("user", help="team access: local accounts (KB_ACCOUNTS_FILE)")
    users = user.add_subparsers(dest="action", required=True)
    users.add_parser("list", help="the users and their roles")
    for action, text in (("add", "add a user"), ("passwd", "change a user's password")):
        a = users.add_parser(action, help=text)
        a.add_argument("name")
        if action == "add":
            a.add_argument("--role", choices=ROLES, default="reader")
        a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    r = users.add_parser("role", help="change a user's role")
    r.add_argument("name")
    r.add_argument("role", choices=ROLES)
    users.add_parser("remove", help="remove a user").add_argument("name")
    user.set_defaults(func=cmd_user)

    token = sub.add_parser("token", help="team access: API tokens for scripts and the CLI")
    tokens = token.add_subparsers(dest="action", required=True)
    tokens.add_parser("list", help="the tokens (ids, names, roles; never the secrets)")
    c = tokens.add_parser("create", help="make a token and print it once")
    c.add_argument("name", help="who or what uses it")
    c.add_argument("--role", choices=ROLES, default="reader")
    tokens.add_parser("revoke", help="revoke a token by its id").add_argument("id")
    token.set_defaults(func=cmd_token)

    group = sub.add_parser("group", help="team access: groups of users, for `kb source access`")
    groups = group.add_subparsers(dest="action", required=True)
    groups.add_parser("list", help="the groups and their members")
    a = groups.add_parser("add", help="add users (or token names) to a group, making it if needed")
    a.add_argument("group")
    a.add_argument("members", nargs="+")
    r = groups.add_parser("remove", help="take users out of a group; no users: remove the group")
    r.add_argument("group")
    r.add_argument("members", nargs="*")
    group.set_defaults(func=cmd_group)


__all__ = ["register_cli"]
