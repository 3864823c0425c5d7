#!/usr/bin/env python3
"""A small popug client: log in to auth, create one task in the tracker.

Calls popug.auth.v1.AuthService/Login, then popug.tracker.v1.TrackerService/CreateTask
with `authorization: Bearer <access token>`, and prints one line of JSON to stdout:

    {"login": ..., "accountId": ..., "taskId": ..., "key": ..., "title": ...,
     "assigneeId": ..., "status": ...}

On a gRPC error it prints `error: <code> <details>` to stderr and exits 2.
The stubs come from ./generate.sh (into ./generated, not committed).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, "generated")

# Exit codes: 0 ok, 1 setup problem (stubs or packages missing), 2 gRPC error or bad usage.
EXIT_SETUP = 1
EXIT_RPC = 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Log in to popug auth and create a task in the tracker; "
        "prints the new task as one line of JSON.",
    )
    parser.add_argument(
        "--auth", default="127.0.0.1:50051", help="auth service address (default: %(default)s)"
    )
    parser.add_argument(
        "--tracker",
        default="127.0.0.1:50052",
        help="tracker service address (default: %(default)s)",
    )
    parser.add_argument("--login", required=True, help="account login")
    parser.add_argument(
        "--password",
        default=os.environ.get("POPUG_PASSWORD"),
        help="account password (default: $POPUG_PASSWORD)",
    )
    parser.add_argument(
        "--title", default="Feed the parrots", help="task title (default: %(default)s)"
    )
    parser.add_argument("--jira-id", default="", help="optional jira id, such as UBERPOP-42")
    parser.add_argument("--description", default="", help="optional task description")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="deadline of each call in seconds (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not args.password:
        parser.error("a password is needed: --password or POPUG_PASSWORD")
    return args


def load_stubs():
    """Imports grpc and the generated stubs, or exits with a clear message."""
    if not os.path.isdir(os.path.join(GENERATED, "popug")):
        print(
            f"error: generated stubs not found in {GENERATED}; "
            f"run {os.path.join(HERE, 'generate.sh')} first",
            file=sys.stderr,
        )
        sys.exit(EXIT_SETUP)
    # The stubs import each other as `popug.<svc>.v1....` (namespace packages, no
    # __init__.py needed), so `generated` must come first on the path.
    sys.path.insert(0, GENERATED)
    try:
        import grpc
        from popug.auth.v1 import auth_pb2, auth_pb2_grpc
        from popug.tracker.v1 import tracker_pb2, tracker_pb2_grpc
    except ImportError as e:
        print(
            f"error: cannot import grpc or the stubs ({e}); run "
            f"`python3 -m pip install -r {os.path.join(HERE, 'requirements.txt')}` "
            f"and {os.path.join(HERE, 'generate.sh')}",
            file=sys.stderr,
        )
        sys.exit(EXIT_SETUP)
    return grpc, auth_pb2, auth_pb2_grpc, tracker_pb2, tracker_pb2_grpc


def main(argv=None):
    args = parse_args(argv)
    grpc, auth_pb2, auth_pb2_grpc, tracker_pb2, tracker_pb2_grpc = load_stubs()

    try:
        with grpc.insecure_channel(args.auth) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            login = auth.Login(
                auth_pb2.LoginRequest(login=args.login, password=args.password),
                timeout=args.timeout,
            )

        with grpc.insecure_channel(args.tracker) as channel:
            tracker = tracker_pb2_grpc.TrackerServiceStub(channel)
            created = tracker.CreateTask(
                tracker_pb2.CreateTaskRequest(
                    title=args.title,
                    jira_id=args.jira_id,
                    description=args.description,
                ),
                metadata=(("authorization", f"Bearer {login.access_token}"),),
                timeout=args.timeout,
            )
    except grpc.RpcError as e:
        print(f"error: {e.code().name} {e.details()}", file=sys.stderr)
        return EXIT_RPC

    task = created.task
    out = {
        "login": login.account.login or args.login,
        "accountId": login.account.account_id,
        "taskId": task.task_id,
        "key": task.key,
        "title": task.title,
        "assigneeId": task.assignee_id,
        "status": tracker_pb2.TaskStatus.Name(task.status),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
