CREATE TABLE "entity_nodes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"key" text collate "C" NOT NULL,
	"name" text NOT NULL,
	"total_value" double precision DEFAULT 0 NOT NULL,
	"contract_count" integer DEFAULT 0 NOT NULL,
	"risk_score" real DEFAULT 0 NOT NULL,
	"last_investigation_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "entity_relationships" (
	"agency_key" text collate "C" NOT NULL,
	"supplier_key" text collate "C" NOT NULL,
	"contract_count" integer DEFAULT 0 NOT NULL,
	"total_value" double precision DEFAULT 0 NOT NULL,
	"last_investigation_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "entity_relationships_agency_key_supplier_key_pk" PRIMARY KEY("agency_key","supplier_key")
);
--> statement-breakpoint
CREATE TABLE "investigation_findings" (
	"investigation_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"finding_id" text NOT NULL,
	"type" text NOT NULL,
	"severity" real NOT NULL,
	"confidence" real NOT NULL,
	"title" text NOT NULL,
	"explanation" text NOT NULL,
	"contract_ids" text[] NOT NULL,
	"evidence" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "investigation_findings_investigation_id_seq_pk" PRIMARY KEY("investigation_id","seq")
);
--> statement-breakpoint
CREATE TABLE "investigation_inputs" (
	"investigation_id" uuid NOT NULL,
	"chunk" integer NOT NULL,
	"contracts" "bytea" NOT NULL,
	CONSTRAINT "investigation_inputs_investigation_id_chunk_pk" PRIMARY KEY("investigation_id","chunk")
);
--> statement-breakpoint
CREATE TABLE "investigations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" text,
	"session_id" text,
	"query" text DEFAULT '' NOT NULL,
	"data_source" text NOT NULL,
	"source_kind" text NOT NULL,
	"sample_data" boolean DEFAULT false NOT NULL,
	"filters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"anomaly_types" text[] NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"current_phase" text DEFAULT 'queued' NOT NULL,
	"progress" real DEFAULT 0 NOT NULL,
	"progress_seq" integer DEFAULT 0 NOT NULL,
	"records_expected" integer,
	"records_processed" integer DEFAULT 0 NOT NULL,
	"anomalies_detected" integer DEFAULT 0 NOT NULL,
	"confidence" real,
	"summary" text,
	"error" text,
	"job_id" uuid,
	"run_count" integer DEFAULT 0 NOT NULL,
	"instance_id" text,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"processing_time_ms" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "investigations_progress_range" CHECK ("investigations"."progress" >= 0 and "investigations"."progress" <= 1)
);
--> statement-breakpoint
ALTER TABLE "entity_nodes" ADD CONSTRAINT "entity_nodes_last_investigation_id_investigations_id_fk" FOREIGN KEY ("last_investigation_id") REFERENCES "public"."investigations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "investigation_findings" ADD CONSTRAINT "investigation_findings_investigation_id_investigations_id_fk" FOREIGN KEY ("investigation_id") REFERENCES "public"."investigations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "investigation_inputs" ADD CONSTRAINT "investigation_inputs_investigation_id_investigations_id_fk" FOREIGN KEY ("investigation_id") REFERENCES "public"."investigations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "investigations" ADD CONSTRAINT "investigations_session_id_chat_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."chat_sessions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "entity_nodes_kind_key_idx" ON "entity_nodes" USING btree ("kind","key");--> statement-breakpoint
CREATE INDEX "entity_relationships_supplier_idx" ON "entity_relationships" USING btree ("supplier_key");--> statement-breakpoint
CREATE UNIQUE INDEX "investigation_findings_finding_idx" ON "investigation_findings" USING btree ("investigation_id","finding_id");--> statement-breakpoint
CREATE INDEX "investigations_user_created_idx" ON "investigations" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE "investigations"."user_id" is not null;