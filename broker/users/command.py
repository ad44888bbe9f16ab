"""``webkernel-users``: manage the users file of a multi-user service.

::

    webkernel-users FILE add NAME --role student|teacher|observer [--password PW] [--account OS]
    webkernel-users FILE passwd NAME [--password PW]
    webkernel-users FILE remove NAME
    webkernel-users FILE list
    webkernel-users FILE import CLASS.csv

A password that is not given is generated and printed once (it is not stored:
only its WAMP-CRA derived key is). ``import`` reads CSV rows
``name,role[,password]`` (a first row ``name,role,…`` is a header and is
skipped), adds every user or none, and prints ``name,password`` for each
generated password. A running service picks up every change without a restart.
Each edit holds a lock (``FILE.lock``, :func:`broker.users.store.editing`), so
two commands at once never lose one's change.
Exit status: 0 done, 1 refused (the message says why), 2 bad command line.
"""

import argparse
import csv
import sys

from broker.users import store


class Refused(Exception):
    """The command cannot be done; the message says why and nothing was changed."""


def add(path, name, role, password=None, out=sys.stdout, account=None):
    users = store.load(path)
    if name in users:
        raise Refused(f"user {name!r} exists already (use passwd to change the password)")
    generated = password is None
    password = store.generate_password() if generated else password
    users[name] = store.User.create(name, role, password, account=account)
    store.save(path, users)
    if generated:
        out.write(f"{password}\n")


def passwd(path, name, password=None, out=sys.stdout):
    users = store.load(path)
    if name not in users:
        raise Refused(f"no user {name!r} in {path}")
    generated = password is None
    password = store.generate_password() if generated else password
    users[name] = users[name].with_password(password)
    store.save(path, users)
    if generated:
        out.write(f"{password}\n")


def remove(path, name, out=sys.stdout):
    users = store.load(path)
    if users.pop(name, None) is None:
        raise Refused(f"no user {name!r} in {path}")
    store.save(path, users)


def list_(path, out=sys.stdout):
    for name, user in sorted(store.load(path).items()):
        out.write(f"{name}\t{user.role}\n")


def import_(path, csv_path, out=sys.stdout):
    users = store.load(path)
    rows = _read_rows(csv_path)
    created, generated = {}, []
    for line, (name, role, password) in rows:
        if name in users or name in created:
            raise Refused(f"{csv_path}, line {line}: user {name!r} exists already")
        if password is None:
            password = store.generate_password()
            generated.append((name, password))
        try:
            created[name] = store.User.create(name, role, password)
        except ValueError as e:
            raise Refused(f"{csv_path}, line {line}: {e}") from None
    store.save(path, {**users, **created})
    writer = csv.writer(out, lineterminator="\n")
    if generated:
        writer.writerow(("name", "password"))
        writer.writerows(generated)


def _read_rows(csv_path):
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise Refused(f"cannot read {csv_path}: {e}") from None
    parsed = []
    for line, row in enumerate(rows, 1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (line == 1 and cells[:2] == ["name", "role"]):
            continue
        if len(cells) not in (2, 3):
            raise Refused(f"{csv_path}, line {line}: expected name,role[,password], "
                          f"got {len(cells)} columns")
        parsed.append((line, (cells[0], cells[1], cells[2] if len(cells) == 3 and cells[2]
                              else None)))
    return parsed


def parser():
    top = argparse.ArgumentParser(prog="webkernel-users",
                                  description="Manage the users file of twistd webkernel --users FILE.")
    top.add_argument("file", help="the users file (created, mode 0600, if missing)")
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("add", help="add a user (prints the password if generated)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=store.ROLES)
    p.add_argument("--password", help="default: a generated one, printed")
    p.add_argument("--account", help="an existing OS account this user's kernels run as "
                   "(default: one the service makes, <--user-prefix><name>)")
    p = commands.add_parser("passwd", help="set a new password (prints it if generated); "
                            "the user's open sessions end")
    p.add_argument("name")
    p.add_argument("--password", help="default: a generated one, printed")
    p = commands.add_parser("remove", help="remove a user; their open sessions end")
    p.add_argument("name")
    commands.add_parser("list", help="names and roles")
    p = commands.add_parser("import", help="add users from CSV rows name,role[,password]; "
                            "prints generated passwords as CSV")
    p.add_argument("csv")
    return top


def run(argv, out=sys.stdout):
    """Do one command; raise :class:`Refused` or a store error when it cannot be done."""
    a = parser().parse_args(argv)
    if a.command == "list":
        return list_(a.file, out)
    with store.editing(a.file):
        _edit(a, out)


def _edit(a, out):
    """Do one command that changes the file (the caller holds its lock)."""
    if a.command == "add":
        add(a.file, a.name, a.role, a.password, out, a.account)
    elif a.command == "passwd":
        passwd(a.file, a.name, a.password, out)
    elif a.command == "remove":
        remove(a.file, a.name, out)
    else:
        import_(a.file, a.csv, out)


def main(argv=None):
    """The console script: exit status 0 done, 1 refused, 2 bad command line."""
    try:
        run(sys.argv[1:] if argv is None else argv)
    except (Refused, store.UsersFileError, ValueError, OSError) as e:
        sys.stderr.write(f"webkernel-users: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
