-- The demo schema of docker-compose.yml's source, created in the database `shop` (MYSQL_DATABASE)
-- on its first start. Two table groups (deploy/compose/dfs.yaml, relmgr.groups):
--   orders:   customers <- orders <- order_items (FOREIGN KEYs: one group, one DPU)
--   activity: page_views (no relationship: a DPU of its own)
-- Unqualified names: the image runs this file in MYSQL_DATABASE; the image test runs it in a
-- database of its own on the local stack.
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(60) NOT NULL,
  email VARCHAR(80) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
CREATE TABLE orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  status ENUM('new', 'paid', 'shipped') NOT NULL DEFAULT 'new',
  total DECIMAL(12, 2) NOT NULL DEFAULT 0,
  placed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE TABLE order_items (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL,
  sku VARCHAR(20) NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(10, 2) NOT NULL,
  FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
);
CREATE TABLE page_views (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  path VARCHAR(200) NOT NULL,
  customer_id INT NULL,
  viewed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY (viewed_at)
);

INSERT INTO customers (name, email) VALUES
  ('Ada Lovelace', 'ada@example.com'),
  ('Grace Hopper', 'grace@example.com'),
  ('Edsger Dijkstra', 'edsger@example.com');
INSERT INTO orders (customer_id, status, total) VALUES (1, 'paid', 31.50), (2, 'new', 12.00);
INSERT INTO order_items (order_id, sku, qty, price) VALUES
  (1, 'BOOK-1', 1, 19.50), (1, 'PEN-2', 3, 4.00), (2, 'MUG-7', 1, 12.00);
INSERT INTO page_views (path, customer_id) VALUES ('/', NULL), ('/books', 1), ('/mugs', 2);
