"""The article's REST -> gRPC chain, REST side: GET /user/<id> asks the grpcio user
service (USER_SERVICE_ADDR, host:port) over gRPC.

Run: gunicorn -w 2 -b 127.0.0.1:PORT flask_chain:app  (stubs on PYTHONPATH)
"""
import os

import grpc
from flask import Flask, jsonify

from user_service.v1 import user_service_pb2, user_service_pb2_grpc

app = Flask(__name__)
ADDR = os.environ.get("USER_SERVICE_ADDR", "127.0.0.1:50051")
_stub = None


def stub():
    # Created in each gunicorn worker after the fork: a gRPC channel must not cross it.
    global _stub
    if _stub is None:
        _stub = user_service_pb2_grpc.UserServiceStub(grpc.insecure_channel(ADDR))
    return _stub


@app.route("/user/<int:user_id>")
def get_user(user_id):
    try:
        user = stub().GetUser(user_service_pb2.GetUserRequest(user_id=user_id), timeout=5)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return jsonify({"error": "user not found"}), 404
        return jsonify({"error": "user-service is unavailable"}), 503
    return jsonify({"id": user.id, "name": user.name, "email": user.email})
