CREATE TABLE "academy_badges" (
	"code" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"icon" text NOT NULL,
	"color" text,
	"rarity" text NOT NULL,
	"category" text NOT NULL,
	"xp_bonus" integer DEFAULT 0 NOT NULL,
	"is_secret" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "academy_conversations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"session_id" text NOT NULL,
	"agent_name" text NOT NULL,
	"track" text NOT NULL,
	"topic" text,
	"difficulty" text DEFAULT 'beginner' NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"rating" integer,
	"feedback" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	CONSTRAINT "academy_conversations_rating_range" CHECK ("academy_conversations"."rating" between 1 and 5)
);
--> statement-breakpoint
CREATE TABLE "academy_missions" (
	"id" text PRIMARY KEY NOT NULL,
	"code" text NOT NULL,
	"title" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"track" text NOT NULL,
	"difficulty" text NOT NULL,
	"category" text NOT NULL,
	"xp_reward" integer NOT NULL,
	"badge_reward" text,
	"required_level" integer DEFAULT 1 NOT NULL,
	"prerequisites" text[] DEFAULT '{}'::text[] NOT NULL,
	"github_issue_url" text,
	"resources" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"video_url" text,
	"recommended_agent" text,
	"is_active" boolean DEFAULT true NOT NULL,
	"is_featured" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "academy_missions_xp_reward_positive" CHECK ("academy_missions"."xp_reward" > 0)
);
--> statement-breakpoint
CREATE TABLE "academy_user_badges" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"badge_code" text NOT NULL,
	"earned_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "academy_user_missions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" text NOT NULL,
	"mission_id" text NOT NULL,
	"status" text DEFAULT 'in_progress' NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"pull_request_url" text,
	"notes" text,
	"xp_awarded" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "academy_users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" text NOT NULL,
	"username" text NOT NULL,
	"email" text,
	"avatar_url" text,
	"main_track" text DEFAULT 'backend' NOT NULL,
	"github_username" text,
	"total_xp" integer DEFAULT 0 NOT NULL,
	"enrolled_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "academy_users_user_id_key" UNIQUE("user_id"),
	CONSTRAINT "academy_users_total_xp_nonnegative" CHECK ("academy_users"."total_xp" >= 0)
);
--> statement-breakpoint
CREATE TABLE "academy_xp_transactions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"amount" integer NOT NULL,
	"balance_after" integer NOT NULL,
	"source_type" text NOT NULL,
	"source_id" text NOT NULL,
	"conversation_id" uuid,
	"description" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "academy_xp_amount_positive" CHECK ("academy_xp_transactions"."amount" > 0)
);
--> statement-breakpoint
ALTER TABLE "academy_conversations" ADD CONSTRAINT "academy_conversations_user_id_academy_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."academy_users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_conversations" ADD CONSTRAINT "academy_conversations_session_id_chat_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."chat_sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_user_badges" ADD CONSTRAINT "academy_user_badges_user_id_academy_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."academy_users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_user_badges" ADD CONSTRAINT "academy_user_badges_badge_code_academy_badges_code_fk" FOREIGN KEY ("badge_code") REFERENCES "public"."academy_badges"("code") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_user_missions" ADD CONSTRAINT "academy_user_missions_user_id_academy_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."academy_users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_user_missions" ADD CONSTRAINT "academy_user_missions_mission_id_academy_missions_id_fk" FOREIGN KEY ("mission_id") REFERENCES "public"."academy_missions"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_xp_transactions" ADD CONSTRAINT "academy_xp_transactions_user_id_academy_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."academy_users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "academy_xp_transactions" ADD CONSTRAINT "academy_xp_transactions_conversation_id_academy_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."academy_conversations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "academy_conversations_session_idx" ON "academy_conversations" USING btree ("session_id");--> statement-breakpoint
CREATE INDEX "academy_conversations_user_started_idx" ON "academy_conversations" USING btree ("user_id","started_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "academy_missions_code_idx" ON "academy_missions" USING btree ("code");--> statement-breakpoint
CREATE UNIQUE INDEX "academy_user_badges_user_badge_idx" ON "academy_user_badges" USING btree ("user_id","badge_code");--> statement-breakpoint
CREATE UNIQUE INDEX "academy_user_missions_user_mission_idx" ON "academy_user_missions" USING btree ("user_id","mission_id");--> statement-breakpoint
CREATE INDEX "academy_user_missions_completed_idx" ON "academy_user_missions" USING btree ("mission_id") WHERE "academy_user_missions"."status" = 'completed';--> statement-breakpoint
CREATE INDEX "academy_users_leaderboard_idx" ON "academy_users" USING btree ("total_xp" DESC NULLS LAST,"enrolled_at","user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "academy_xp_source_idx" ON "academy_xp_transactions" USING btree ("user_id","source_type","source_id");--> statement-breakpoint
CREATE INDEX "academy_xp_user_order_idx" ON "academy_xp_transactions" USING btree ("user_id","id");--> statement-breakpoint
CREATE INDEX "academy_xp_window_idx" ON "academy_xp_transactions" USING btree ("created_at","user_id","amount");--> statement-breakpoint
CREATE INDEX "academy_xp_conversation_idx" ON "academy_xp_transactions" USING btree ("conversation_id") WHERE "academy_xp_transactions"."conversation_id" is not null;--> statement-breakpoint
-- Seeds: insert-if-absent by code, so re-running never duplicates a row or resets a count.
INSERT INTO "academy_badges" ("code", "name", "description", "icon", "color", "rarity", "category", "xp_bonus", "is_secret") VALUES
	('first_conversation', 'Primeira Conversa', 'Iniciou sua primeira conversa com um agente', 'message-circle', '#10B981', 'common', 'learning', 25, false),
	('streak_7', 'Semana de Fogo', 'Manteve streak de 7 dias consecutivos', 'flame', '#F59E0B', 'uncommon', 'streak', 50, false),
	('streak_30', 'Mes Dedicado', 'Manteve streak de 30 dias consecutivos', 'calendar', '#8B5CF6', 'rare', 'streak', 200, false),
	('first_mission', 'Primeira Missao', 'Completou sua primeira missao', 'target', '#3B82F6', 'common', 'contribution', 50, false),
	('first_pr', 'Primeiro PR', 'Teve seu primeiro Pull Request aprovado', 'git-pull-request', '#10B981', 'uncommon', 'contribution', 100, false),
	('all_agents', 'Conhecedor', 'Conversou com todos os agentes', 'users', '#8B5CF6', 'rare', 'learning', 150, false),
	('mentor_badge', 'Mentor', 'Alcancou o rank de Mentor', 'crown', '#F59E0B', 'epic', 'special', 300, false),
	('architect_badge', 'Arquiteto', 'Alcancou o rank maximo de Arquiteto', 'trophy', '#EF4444', 'legendary', 'special', 500, false)
ON CONFLICT ("code") DO NOTHING;--> statement-breakpoint
INSERT INTO "academy_missions" ("id", "code", "title", "description", "track", "difficulty", "category", "xp_reward", "required_level", "prerequisites", "github_issue_url", "recommended_agent", "is_featured") VALUES
	('mission_001', 'fix_typo_docs', 'Corrigir Typo na Documentacao', 'Encontre e corrija um erro de digitacao na documentacao do projeto.', 'backend', 'easy', 'docs', 10, 1, '{}', NULL, 'machado', true),
	('mission_002', 'write_unit_test', 'Escrever Teste Unitario', 'Adicione um teste unitario para uma funcao existente.', 'backend', 'easy', 'test', 15, 1, '{}', NULL, 'zumbi', true),
	('mission_003', 'fix_simple_bug', 'Corrigir Bug Simples', 'Resolva um bug marcado como ''good first issue'' no GitHub.', 'backend', 'medium', 'bug-fix', 25, 2, '{fix_typo_docs}', 'https://github.com/anderson-ufrj/cidadao.ai-backend/issues', 'anita', true),
	('mission_004', 'implement_component', 'Implementar Componente React', 'Crie um novo componente reutilizavel para o frontend.', 'frontend', 'medium', 'feature', 30, 2, '{}', NULL, 'oscar_niemeyer', false),
	('mission_005', 'optimize_query', 'Otimizar Query SQL', 'Identifique e otimize uma query lenta no sistema.', 'backend', 'hard', 'refactor', 50, 5, '{fix_simple_bug}', NULL, 'senna', false)
ON CONFLICT ("code") DO NOTHING;
