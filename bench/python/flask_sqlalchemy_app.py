"""The article's REST service on a database: GET /user/<id> with Flask-SQLAlchemy's
`User.query.get`, from the `users` table msvc's generated service migrated.

Run: DATABASE_URL=postgresql://... gunicorn -w 2 -b 127.0.0.1:PORT flask_sqlalchemy_app:app
"""
import os

from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace(
    "postgres://", "postgresql+psycopg2://", 1
)
db = SQLAlchemy(app)


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.BigInteger, primary_key=True)
    name = db.Column(db.Text, nullable=False)


@app.route("/user/<int:user_id>")
def get_user(user_id):
    user = User.query.get(user_id)
    if user is None:
        return jsonify({"error": "user not found"}), 404
    return jsonify({"id": user.id, "name": user.name})
