-- The pipeline demo's source schema: customers -> orders -> order_items.
-- orders.customer_id has a FOREIGN KEY (discovered); order_items.order_id has none (declared in
-- examples/pipeline.yaml under pipeline.relationships).
CREATE DATABASE IF NOT EXISTS demo_pipe_shop;
CREATE TABLE IF NOT EXISTS demo_pipe_shop.customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  first_name VARCHAR(40) NOT NULL,
  last_name VARCHAR(40) NOT NULL,
  email VARCHAR(80),
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
CREATE TABLE IF NOT EXISTS demo_pipe_shop.orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  placed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  total DECIMAL(14,2) NOT NULL,
  internal_note VARCHAR(100),
  FOREIGN KEY (customer_id) REFERENCES demo_pipe_shop.customers (id)
);
CREATE TABLE IF NOT EXISTS demo_pipe_shop.order_items (
  id INT AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL,
  sku VARCHAR(20) NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  KEY (order_id)
);
