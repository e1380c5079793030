"""The article's REST service: GET /user/<id> from an in-memory dict.

Run: gunicorn -w 2 -b 127.0.0.1:PORT flask_app:app
"""
from flask import Flask, jsonify

app = Flask(__name__)

users = {
    1: {"id": 1, "name": "Alice", "email": "alice@example.com"},
    2: {"id": 2, "name": "Bob", "email": "bob@example.com"},
    3: {"id": 3, "name": "Carol", "email": "carol@example.com"},
}


@app.route("/user/<int:user_id>")
def get_user(user_id):
    user = users.get(user_id)
    if user is None:
        return jsonify({"error": "user not found"}), 404
    return jsonify(user)
