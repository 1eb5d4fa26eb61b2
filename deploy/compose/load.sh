#!/bin/sh
# A steady small load on the demo schema (01-schema.sql), run by docker-compose.yml's `load`
# service with the mysql image's client: every LOAD_INTERVAL seconds one transaction on each group
# (a new order with its lines, a paid one shipped, now and then a new customer) and a few page
# views, and old page views deleted. The image test runs it against the local stack too.
#
#   LOAD_HOST (mysql-source), LOAD_PORT (3306), LOAD_USER (root), LOAD_DATABASE (shop)
#   LOAD_PASSWORD_FILE (/run/secrets/mysql_root_password; empty file: no password)
#   LOAD_INTERVAL seconds between rounds (1), LOAD_ROUNDS rounds then exit (0: forever)
set -eu
host="${LOAD_HOST:-mysql-source}"
port="${LOAD_PORT:-3306}"
user="${LOAD_USER:-root}"
db="${LOAD_DATABASE:-shop}"
interval="${LOAD_INTERVAL:-1}"
rounds="${LOAD_ROUNDS:-0}"
password_file="${LOAD_PASSWORD_FILE:-/run/secrets/mysql_root_password}"
client="${LOAD_CLIENT:-mysql}"

# The password goes into an option file only this user can read, never onto a command line.
cnf="$(mktemp)"
trap 'rm -f "$cnf"' EXIT INT TERM
chmod 600 "$cnf"
{
  echo "[client]"
  echo "host=$host"
  echo "port=$port"
  echo "user=$user"
  if [ -s "$password_file" ]; then printf 'password="%s"\n' "$(cat "$password_file")"; fi
} >"$cnf"
sql() { "$client" --defaults-extra-file="$cnf" --protocol=TCP --batch --skip-column-names "$db"; }

until echo "SELECT 1" | sql >/dev/null 2>&1; do
  echo "load: waiting for $host:$port"
  sleep 2
done
echo "load: writing to $db on $host:$port every ${interval}s"

i=0
while [ "$rounds" -eq 0 ] || [ "$i" -lt "$rounds" ]; do
  i=$((i + 1))
  sql <<SQL
START TRANSACTION;
INSERT INTO customers (name, email)
  SELECT CONCAT('Customer ', $i), CONCAT('c', $i, '@example.com') FROM DUAL WHERE $i % 5 = 1;
SET @customer = (SELECT id FROM customers ORDER BY RAND() LIMIT 1);
INSERT INTO orders (customer_id, total) VALUES (@customer, 0);
SET @order = LAST_INSERT_ID();
INSERT INTO order_items (order_id, sku, qty, price) VALUES
  (@order, CONCAT('SKU-', $i % 17), 1 + $i % 3, 2.50 + $i % 40),
  (@order, CONCAT('SKU-', $i % 23), 1, 9.90);
UPDATE orders SET total = (SELECT SUM(qty * price) FROM order_items WHERE order_id = @order) WHERE id = @order;
UPDATE orders SET status = 'paid' WHERE status = 'new' AND id < @order ORDER BY id LIMIT 1;
UPDATE orders SET status = 'shipped' WHERE status = 'paid' ORDER BY id LIMIT 1;
COMMIT;
INSERT INTO page_views (path, customer_id) VALUES
  (CONCAT('/orders/', @order), @customer), ('/', NULL), (CONCAT('/sku/', $i % 17), @customer);
SET @cut = (SELECT CAST(MAX(id) AS SIGNED) - 500 FROM page_views);
DELETE FROM page_views WHERE id < @cut;
SQL
  sleep "$interval"
done
echo "load: $i rounds done"
