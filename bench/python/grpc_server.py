"""The article's gRPC user service with grpcio: UserService.GetUser from an in-memory
dict, NOT_FOUND for unknown ids, a thread pool of 10 (grpcio's usual example).

Run: python grpc_server.py HOST:PORT  (stubs generated with grpcio-tools on PYTHONPATH)
"""
import signal
import sys
from concurrent import futures

import grpc

from user_service.v1 import user_service_pb2, user_service_pb2_grpc

USERS = {
    1: ("Alice", "alice@example.com"),
    2: ("Bob", "bob@example.com"),
    3: ("Carol", "carol@example.com"),
}


class UserService(user_service_pb2_grpc.UserServiceServicer):
    def GetUser(self, request, context):
        user = USERS.get(request.user_id)
        if user is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "user not found")
        name, email = user
        return user_service_pb2.User(id=request.user_id, name=name, email=email)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    user_service_pb2_grpc.add_UserServiceServicer_to_server(UserService(), server)
    server.add_insecure_port(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(1))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
