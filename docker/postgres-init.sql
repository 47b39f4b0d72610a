-- One database per service (the image creates quire_default from POSTGRES_DB).
CREATE DATABASE quire_accounts OWNER quire;
CREATE DATABASE quire_catalog OWNER quire;
CREATE DATABASE quire_orders OWNER quire;
CREATE DATABASE quire_recommendations OWNER quire;
