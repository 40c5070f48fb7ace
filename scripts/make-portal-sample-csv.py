# Writes test/data/portal-contratos-latin1.csv: a small, fictitious export in the Portal da
# Transparência's contract layout (Latin-1, ";", quoted, Brazilian numbers and dates) with two
# planted anomalies: three dispensas just under the 2024 limit (splitting) and a +48% aditivo.
HEADER = ['Número do Contrato', 'Objeto', 'Fundamento Legal', 'Modalidade Compra', 'Situação Contrato',
          'Código Órgão Superior', 'Nome Órgão Superior', 'Código Órgão', 'Nome Órgão', 'Código UG', 'Nome UG',
          'Data Assinatura Contrato', 'Data Publicação DOU', 'Data Início Vigência', 'Data Fim Vigência',
          'Código Contratado', 'Nome Contratado', 'Valor Inicial Compra', 'Valor Final Compra']
SAUDE = ('36000', 'Ministério da Saúde', '36000', 'Ministério da Saúde', '250005', 'Coordenação-Geral de Material e Patrimônio')
MEC = ('26000', 'Ministério da Educação', '26000', 'Ministério da Educação', '150002', 'Subsecretaria de Assuntos Administrativos')
FIOCRUZ = ('36000', 'Ministério da Saúde', '36201', 'Fundação Oswaldo Cruz', '254420', 'Fundação Oswaldo Cruz - Presidência')
LEI = 'Lei nº 14.133, de 1º de abril de 2021'
rows = [
  # Splitting: same agency, supplier and object, 3 dispensas in 20 days, each under R$ 59.906,02.
  ('00031/2024', 'Aquisição de material médico-hospitalar (luvas e seringas)', LEI + ', art. 75, II', 'Dispensa de Licitação', 'Ativo', *SAUDE, '04/03/2024', '05/03/2024', '04/03/2024', '03/03/2025', '12.345.678/0001-95', 'Distribuidora São João Ltda', '59.900', '59.900'),
  ('00034/2024', 'Aquisição de material médico-hospitalar (gazes e ataduras)', LEI + ', art. 75, II', 'Dispensa de Licitação', 'Ativo', *SAUDE, '12/03/2024', '13/03/2024', '12/03/2024', '11/03/2025', '12.345.678/0001-95', 'Distribuidora São João Ltda', '58.750,00', '58.750,00'),
  ('00039/2024', 'Aquisição de material médico-hospitalar (cateteres)', LEI + ', art. 75, II', 'Dispensa de Licitação', 'Ativo', *SAUDE, '22/03/2024', '25/03/2024', '22/03/2024', '21/03/2025', '12.345.678/0001-95', 'Distribuidora São João Ltda', '57.300,50', '57.300,50'),
  # Value increase: +48% over the initial value.
  ('00007/2024', 'Construção de creches na região Nordeste - lote único', LEI, 'Concorrência', 'Ativo', *MEC, '15/02/2024', '19/02/2024', '15/02/2024', '14/02/2026', '98.765.432/0001-10', 'Construtora Paraíba & Irmãos S.A.', '1.000.000,00', '1.480.000,00'),
]
normal = [
  ('Aquisição de gêneros alimentícios para merenda escolar', 'Pregão', MEC, 'Cooperativa Agrícola Serrana', '45.678.901/0001-23', '184.320,75', '184.320,75'),
  ('Serviços de limpeza e conservação predial', 'Pregão', MEC, 'Limpeza Ágil Serviços Ltda', '23.456.789/0001-01', '412.880,00', '430.100,00'),
  ('Aquisição de vacinas e imunobiológicos', 'Inexigibilidade de Licitação', FIOCRUZ, 'Laboratório Butantã Fictício S.A.', '34.567.890/0001-12', '2.345.678,90', '2.345.678,90'),
  ('Manutenção de equipamentos de ressonância magnética', 'Pregão', SAUDE, 'Técnica Médica Manutenção Ltda', '56.789.012/0001-34', '318.400,00', '318.400,00'),
  ('Licenciamento de software de gestão acadêmica', 'Pregão', MEC, 'Código Aberto Tecnologia ME', '67.890.123/0001-45', '96.000,00', '96.000,00'),
  ('Fornecimento de oxigênio medicinal', 'Pregão', SAUDE, 'Gases Médicos do Brasil Ltda', '78.901.234/0001-56', '1.250.000,00', '1.310.500,00'),
  ('Serviços de vigilância patrimonial armada', 'Pregão', FIOCRUZ, 'Guarda Forte Segurança Ltda', '89.012.345/0001-67', '742.115,32', '742.115,32'),
  ('Aquisição de mobiliário escolar (carteiras e cadeiras)', 'Pregão', MEC, 'Móveis Escolares Paraná Ltda', '90.123.456/0001-78', '533.000,00', '533.000,00'),
  ('Capacitação de servidores em gestão de contratos', 'Dispensa de Licitação', SAUDE, 'Escola de Governo Consultoria ME', '01.234.567/0001-89', '24.500,00', '24.500,00'),
  ('Locação de veículos com motorista para campanhas de vacinação', 'Pregão', SAUDE, 'Transportes União Ltda', '11.222.333/0001-44', '687.300,00', '687.300,00'),
  ('Aquisição de reagentes para diagnóstico laboratorial', 'Pregão', FIOCRUZ, 'BioReagentes Análises Ltda', '22.333.444/0001-55', '215.980,10', '215.980,10'),
  ('Serviços de telefonia móvel corporativa', 'Pregão', MEC, 'Conecta Telecomunicações S.A.', '33.444.555/0001-66', '88.440,00', '88.440,00'),
]
for i, (obj, mod, org, sup, cnpj, vi, vf) in enumerate(normal):
    d = f'{(i * 2) % 27 + 1:02d}/{(i % 9) + 4:02d}/2024'
    rows.append((f'{100 + i:05d}/2024', obj, LEI, mod, 'Ativo', *org, d, d, d, '31/12/2025', cnpj, sup, vi, vf))
q = lambda v: '"' + v.replace('"', '""') + '"'
text = '\r\n'.join(';'.join(q(c) for c in r) for r in [HEADER, *rows]) + '\r\n'
open('test/data/portal-contratos-latin1.csv', 'wb').write(text.encode('latin-1'))
print(len(rows), 'rows')
